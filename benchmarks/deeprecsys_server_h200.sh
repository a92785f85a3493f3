#!/usr/bin/env bash
# The eight DeepRecSys models in Server on one H200, as `suite run` runs torch-cuda by default: the
# backend in one GPU worker process (--devices all), the driver running LoadGen, the batcher and the
# round trip. Full scale, bf16, 65,536 generated items; per model an Offline run of OFFLINE_S
# (default 2) seconds, then Server at FRACTIONS (default 0.5) of that Offline for SERVER_S (default 2)
# seconds at the model's medium SLA (p95). One model per invocation (MODELS, default all eight), each
# at most PER_MODEL_S (default 30 s), so a slow model cannot starve the rest: 8 x 30 s = 240 s at
# most, about 20 s a model expected at the defaults (worker start with torch and CUDA, load, graphs,
# two 1-s probes, two 2-s LoadGen runs).
#   PY=/tmp/v/bin/python OUT=$OUT bash benchmarks/deeprecsys_server_h200.sh
# On a CPU (a check of the script): EXTRA="--backend null --variants batch_us=100,item_ns=30 --scale tiny --rows 8192"
set -u
PY=${PY:-python3}
OUT=${OUT:-.}
FRACTIONS=${FRACTIONS:-0.5}
PER_MODEL_S=${PER_MODEL_S:-30}
SERVER_S=${SERVER_S:-2}
OFFLINE_S=${OFFLINE_S:-2}
MODELS=${MODELS:-ncf mtwnd wnd dlrm-rmc1 dlrm-rmc2 dlrm-rmc3 din dien}
export PYTHONUNBUFFERED=1
cd "$(dirname "$0")"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
for m in $MODELS; do
  start=$SECONDS
  timeout "$PER_MODEL_S" "$PY" gpu_server.py --models "$m" --scale full --rows 65536 --precisions bf16 \
    --fractions "$FRACTIONS" --seconds "$SERVER_S" --offline-seconds "$OFFLINE_S" --no-auto --out "$OUT/deeprecsys_placed.jsonl" ${EXTRA:-} 2>&1 \
    | grep -v Warning | tee -a "$OUT/deeprecsys_placed.txt"
  echo "$m: exit ${PIPESTATUS[0]}, $((SECONDS - start)) s" | tee -a "$OUT/deeprecsys_placed.txt"
done
