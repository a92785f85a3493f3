#!/usr/bin/env bash
# Session 11, call 2: dlrm-v3's jagged CUDA graphs. (1) the cuda tests (new: graphs vs eager at
# --scale small, fp32 and bf16); (2) hstu_gpu.py --backend-only: torch-cuda one lane, graphs vs
# eager per batch size at MLPerf's size, score difference; (3) dlrm_v3_h200.sh: accuracy with graphs,
# Offline graphs vs cuda_graphs=0, Server at 0.9x of the graph Offline.
set -u
start=$SECONDS
export PYTHONUNBUFFERED=1 PY=/tmp/v/bin/python RECSUITE_DATA_DIR=/tmp/data
python3 -m venv /tmp/v && echo $(python3 -c 'import site;print(site.getsitepackages()[0])') > $(/tmp/v/bin/python -c 'import sysconfig;print(sysconfig.get_paths()["purelib"])')/base.pth && /tmp/v/bin/pip install -q --no-index --no-deps .whl/*.whl && /tmp/v/bin/pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null 2>&1
echo "== cuda tests ($((SECONDS - start)) s)"
timeout 150 $PY -m pytest -q -p no:cacheprovider -m cuda tests/test_torch_cuda.py -x --durations=6 2>&1 | tail -40 | tee $OUT/cuda_tests.txt
timeout 60 $PY -m pytest -q -p no:cacheprovider -m cuda tests/test_kernels.py tests/test_backends.py -k "dlrm-v3 or dlrm_v3 or hstu" 2>&1 | tail -4 | tee -a $OUT/cuda_tests.txt
echo "== hstu_gpu --backend-only ($((SECONDS - start)) s)"
timeout 120 $PY benchmarks/hstu_gpu.py --scale 1000000 --backend-only --batch 1 2 4 8 11 --seconds 1.5 2>&1 | grep -v -i warn | tee $OUT/hstu_backend.jsonl | tail -30
echo "== dlrm-v3 LoadGen, graphs ($((SECONDS - start)) s)"
mkdir -p $OUT/v3
timeout $((590 - (SECONDS - start))) env OUT=$OUT/v3 ROWS=256 SKIP_PLAIN=1 SKIP_TESTS=1 SECONDS_RUN=12 SERVER_SECONDS=30 \
  OFFLINE_ALT="--option cuda_graphs=0" bash benchmarks/dlrm_v3_h200.sh 2>&1 | grep -v -i warn | grep -v "^-\|^total\|^d" | tail -30
echo "total $((SECONDS - start)) s"
