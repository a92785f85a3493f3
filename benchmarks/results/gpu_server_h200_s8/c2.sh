#!/usr/bin/env bash
# Session 8, call 2: (1) the cuda tests of dlrm-v3, HSTU and torch-cuda's kept_fp32; (2) NCF in Server
# with lanes that sleep (every earlier NCF Server run had eight spinning lanes), 0.5x and 0.7x of
# Offline for 10 s; (3) dlrm-v3 at MLPerf's request size with its fp32 MLPs in TF32 (the new default)
# against kept_fp32=fp32 in the same call, accuracy gate, Server 0.9x; (4) the other DeepRecSys models
# in Server at 0.5x with lanes that sleep, as long as the call's time lasts.
set -u
start=$SECONDS
export PYTHONUNBUFFERED=1 PY=/tmp/v/bin/python RECSUITE_DATA_DIR=/tmp/data
python3 -m venv /tmp/v && echo $(python3 -c 'import site;print(site.getsitepackages()[0])') > $(/tmp/v/bin/python -c 'import sysconfig;print(sysconfig.get_paths()["purelib"])')/base.pth && /tmp/v/bin/pip install -q --no-index --no-deps .whl/*.whl && /tmp/v/bin/pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null 2>&1
left() { echo $((588 - (SECONDS - start))); }
echo "== cuda tests: dlrm-v3, hstu, kept_fp32 ($((SECONDS - start)) s)"
timeout 100 $PY -m pytest -q -p no:cacheprovider -m cuda tests/test_kernels.py tests/test_backends.py tests/test_torch_cuda.py \
  -k "dlrm-v3 or dlrm_v3 or hstu or kept" 2>&1 | tail -4 | tee $OUT/cuda_tests.txt
echo "== ncf Server 0.5x, 0.7x, 10 s each, sleeping lanes ($((SECONDS - start)) s)"
(cd benchmarks && timeout 90 $PY gpu_server.py --models ncf --scale full --rows 65536 --precisions bf16 --fractions 0.5,0.7 \
  --seconds 10 --offline-seconds 3 --no-auto --out $OUT/c2_ncf.jsonl 2>&1 | grep -v -i warn | tail -8)
echo "== dlrm-v3 MLPerf size, tf32 MLPs vs kept_fp32=fp32 ($((SECONDS - start)) s)"
mkdir -p $OUT/v3
timeout 250 env OUT=$OUT/v3 ROWS=256 SKIP_PLAIN=1 SKIP_TESTS=1 SECONDS_RUN=12 SERVER_SECONDS=30 \
  OFFLINE_ALT="--option kept_fp32=fp32" bash benchmarks/dlrm_v3_h200.sh 2>&1 | grep -v -i warn | grep -v "^-\|^total\|^d" | tail -30
echo "== the other DeepRecSys models, Server 0.5x ($((SECONDS - start)) s)"
cd benchmarks
for m in mtwnd wnd dlrm-rmc1 dlrm-rmc3 din dien dlrm-rmc2; do
  t=$(left); [ "$t" -gt 25 ] || { echo "$m: not run (time)"; continue; }
  [ "$t" -gt 32 ] && t=32
  timeout $t $PY gpu_server.py --models $m --scale full --rows 65536 --precisions bf16 --fractions 0.5 --seconds 2 \
    --offline-seconds 2 --no-auto --out $OUT/c2_drs.jsonl 2>&1 | grep -v -i warn | grep "q/s\|Server" | tail -3
  echo "$m: exit ${PIPESTATUS[0]}"
done
echo "total $((SECONDS - start)) s"
