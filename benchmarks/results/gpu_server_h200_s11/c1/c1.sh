#!/usr/bin/env bash
# Session 10 (planned), call 1: (1) the cuda tests (the counts sent from the host have never run
# on a GPU); (2) hstu_gpu.py --profile: GPU time, launches and host launch time per batch size,
# counts read back vs sent from the host; (3) dlrm-v3 at MLPerf's size through LoadGen: Offline and
# Server 0.9x, counts=host (default) vs counts=device in the same call.
set -u
start=$SECONDS
export PYTHONUNBUFFERED=1 PY=/tmp/v/bin/python RECSUITE_DATA_DIR=/tmp/data
python3 -m venv /tmp/v && echo $(python3 -c 'import site;print(site.getsitepackages()[0])') > $(/tmp/v/bin/python -c 'import sysconfig;print(sysconfig.get_paths()["purelib"])')/base.pth && /tmp/v/bin/pip install -q --no-index --no-deps .whl/*.whl && /tmp/v/bin/pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null 2>&1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
echo "== cuda tests ($((SECONDS - start)) s)"
timeout 120 $PY -m pytest -q -p no:cacheprovider -m cuda tests/test_torch_cuda.py --durations=5 2>&1 | tail -8 | tee $OUT/cuda_tests.txt
timeout 60 $PY -m pytest -q -p no:cacheprovider -m cuda tests/test_kernels.py tests/test_backends.py -k "dlrm-v3 or dlrm_v3 or hstu" 2>&1 | tail -4 | tee -a $OUT/cuda_tests.txt
echo "== hstu_gpu profile ($((SECONDS - start)) s)"
timeout 150 $PY benchmarks/hstu_gpu.py --scale 1000000 --batch 1 2 4 8 --seconds 2 --profile 2>&1 | grep -v -i warn | tee $OUT/hstu_profile.jsonl | tail -40
echo "== dlrm-v3 LoadGen, counts=host vs device ($((SECONDS - start)) s)"
mkdir -p $OUT/v3
timeout $((585 - (SECONDS - start))) env OUT=$OUT/v3 ROWS=256 SKIP_PLAIN=1 SKIP_TESTS=1 SKIP_ACCURACY=1 SECONDS_RUN=12 SERVER_SECONDS=30 \
  OFFLINE_ALT="--option counts=device" SERVER_ALT="--option counts=device" bash benchmarks/dlrm_v3_h200.sh 2>&1 | grep -v -i warn | grep -v "^-\|^total\|^d" | tail -30
echo "total $((SECONDS - start)) s"
