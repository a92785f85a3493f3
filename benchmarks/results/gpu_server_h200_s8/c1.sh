#!/usr/bin/env bash
# Session 8, call 1: the cuda tests of torch-cuda (sync=block had not run under them), then the
# check owed since session 7: dlrm-v2 fp8 as typed (dma staging, lanes that sleep), Server at 0.9x
# of Offline for 300 s, GIL watched; a snapshot of the busiest threads mid-run.
set -u
start=$SECONDS
export PYTHONUNBUFFERED=1 PY=/tmp/v/bin/python RECSUITE_DATA_DIR=/tmp/data
python3 -m venv /tmp/v && echo $(python3 -c 'import site;print(site.getsitepackages()[0])') > $(/tmp/v/bin/python -c 'import sysconfig;print(sysconfig.get_paths()["purelib"])')/base.pth && /tmp/v/bin/pip install -q --no-index --no-deps .whl/*.whl && /tmp/v/bin/pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null 2>&1
echo "== cuda tests of torch-cuda ($((SECONDS - start)) s)"
(time timeout 120 $PY -m pytest -q -m cuda -p no:cacheprovider tests/test_torch_cuda.py 2>&1 | tail -6) 2>&1 | tee $OUT/cuda_tests.txt
(sleep 330; top -b -n 1 -H -w 180 | head -40 > $OUT/top_threads.txt) &
cd benchmarks
g() { timeout "$1" $PY gpu_server.py "${@:2}" 2>&1 | grep -v -i warn | grep -v "^  warnings" | tail -14; }
echo "== dlrm-v2 fp8 as typed (dma, sync=block), Server 0.9x 300 s, GIL watched ($((SECONDS - start)) s)"
g $((592 - (SECONDS - start))) --models dlrm-v2 --scale full --precisions fp8 --fractions 0.9 --seconds 300 --offline-seconds 8 --no-auto --out $OUT/c1_dlrm300_block.jsonl --gil-watch $OUT/gil_watch.txt
echo "total $((SECONDS - start)) s"
