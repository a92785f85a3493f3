#!/usr/bin/env bash
# Session 9, call 1: (1) the cuda tests of torch-cuda, dlrm-v3, HSTU (one changed assertion has not
# run on a GPU); (2) dlrm-v3 at MLPerf's request size: Offline with the timed batch pick (8) against
# --max-batch-items 11 in the same call, the accuracy gate, Server 0.9x for 30 s; (3) dlrm-rmc2 and
# dlrm-rmc3 in Server at 0.5x with lanes that sleep (not measured last session: the 32-s limit).
set -u
start=$SECONDS
export PYTHONUNBUFFERED=1 PY=/tmp/v/bin/python RECSUITE_DATA_DIR=/tmp/data
python3 -m venv /tmp/v && echo $(python3 -c 'import site;print(site.getsitepackages()[0])') > $(/tmp/v/bin/python -c 'import sysconfig;print(sysconfig.get_paths()["purelib"])')/base.pth && /tmp/v/bin/pip install -q --no-index --no-deps .whl/*.whl && /tmp/v/bin/pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null 2>&1
left() { echo $((585 - (SECONDS - start))); }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
echo "== cuda tests ($((SECONDS - start)) s)"
timeout 170 $PY -m pytest -q -p no:cacheprovider -m cuda tests/test_torch_cuda.py tests/test_kernels.py tests/test_backends.py \
  -k "cuda or dlrm-v3 or dlrm_v3 or hstu or kept" --durations=5 2>&1 | tail -12 | tee $OUT/cuda_tests.txt
echo "== dlrm-v3 MLPerf size, Offline batch pick vs --max-batch-items 11 ($((SECONDS - start)) s)"
mkdir -p $OUT/v3
timeout 260 env OUT=$OUT/v3 ROWS=256 SKIP_PLAIN=1 SKIP_TESTS=1 SECONDS_RUN=12 SERVER_SECONDS=30 \
  OFFLINE_ALT="--max-batch-items 11" bash benchmarks/dlrm_v3_h200.sh 2>&1 | grep -v -i warn | grep -v "^-\|^total\|^d" | tail -30
echo "== dlrm-rmc2, dlrm-rmc3 Server 0.5x ($((SECONDS - start)) s)"
cd benchmarks
for m in dlrm-rmc3 dlrm-rmc2; do
  t=$(left); [ "$t" -gt 30 ] || { echo "$m: not run (time)"; continue; }
  [ "$t" -gt 80 ] && t=80
  timeout $t $PY gpu_server.py --models $m --scale full --rows 65536 --precisions bf16 --fractions 0.5 --seconds 2 \
    --offline-seconds 2 --no-auto --out $OUT/c1_drs.jsonl 2>&1 | grep -v -i warn | tail -6
  echo "$m: exit ${PIPESTATUS[0]} ($((SECONDS - start)) s)"
done
echo "total $((SECONDS - start)) s"
