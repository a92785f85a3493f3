#!/usr/bin/env bash
# Session 12 (planned), call 1: (1) cuda tests (torch-cuda; dlrm-v3 and HSTU kernels, the
# rows-first launch order); (2) the HSTU attention's tile sweep at MLPerf's size with the rows-first
# candidates (hstu_gpu.py --tiles; new: " rows" tiles); (3) dlrm-v3 through LoadGen: Offline and
# Server at 0.9x for 60 s with the default tile and with the tile tuned at load (tune=1), and that
# the result now records the jagged graphs' replays (the placed backend asks its worker after the run).
set -u
start=$SECONDS
export PYTHONUNBUFFERED=1 PY=/tmp/v/bin/python RECSUITE_DATA_DIR=/tmp/data
python3 -m venv /tmp/v && echo $(python3 -c 'import site;print(site.getsitepackages()[0])') > $(/tmp/v/bin/python -c 'import sysconfig;print(sysconfig.get_paths()["purelib"])')/base.pth && /tmp/v/bin/pip install -q --no-index --no-deps .whl/*.whl && /tmp/v/bin/pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null 2>&1
echo "== cuda tests ($((SECONDS - start)) s)"
timeout 130 $PY -m pytest -q -p no:cacheprovider -m cuda tests/test_torch_cuda.py --durations=4 2>&1 | tail -8 | tee $OUT/cuda_tests.txt
timeout 60 $PY -m pytest -q -p no:cacheprovider -m cuda tests/test_kernels.py tests/test_backends.py -k "dlrm-v3 or dlrm_v3 or hstu" 2>&1 | tail -3 | tee -a $OUT/cuda_tests.txt
echo "== tile sweep ($((SECONDS - start)) s)"
timeout 120 $PY benchmarks/hstu_gpu.py --scale 1000000 --tiles --batch 5 8 --seconds 1.5 2>&1 | grep -v -i warn | tee $OUT/tiles.jsonl | tail -25
echo "== dlrm-v3 LoadGen, tile tuned at load ($((SECONDS - start)) s)"
mkdir -p $OUT/v3
timeout $((590 - (SECONDS - start))) env OUT=$OUT/v3 ROWS=256 SKIP_PLAIN=1 SKIP_TESTS=1 SKIP_ACCURACY=1 SECONDS_RUN=12 SERVER_SECONDS=60 \
  FUSED="--option fused=1" OFFLINE_ALT="--option tune=1" SERVER_ALT="--option tune=1" bash benchmarks/dlrm_v3_h200.sh 2>&1 | grep -v -i warn | grep -v "^-\|^total\|^d" | tail -20
echo "total $((SECONDS - start)) s"
