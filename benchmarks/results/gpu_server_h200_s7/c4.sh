#!/usr/bin/env bash
# Session 7, call 4 (what the device budget left: about 280 s): lanes that sleep on their batch's event
# (sync=block, the new default) instead of spinning, dlrm-v2 fp8 as typed, Server at 0.9x for 120 s,
# GIL watched; a snapshot of the busiest threads mid-run.
set -u
start=$SECONDS
export PYTHONUNBUFFERED=1 PY=/tmp/v/bin/python RECSUITE_DATA_DIR=/tmp/data
python3 -m venv /tmp/v && echo $(python3 -c 'import site;print(site.getsitepackages()[0])') > $(/tmp/v/bin/python -c 'import sysconfig;print(sysconfig.get_paths()["purelib"])')/base.pth && /tmp/v/bin/pip install -q --no-index --no-deps .whl/*.whl && /tmp/v/bin/pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null 2>&1
(sleep 170; top -b -n 1 -H -w 180 | head -40 > $OUT/top_threads.txt) &
cd benchmarks
g() { timeout "$1" $PY gpu_server.py "${@:2}" 2>&1 | grep -v -i warn | grep -v "^  warnings" | tail -14; }
echo "== dlrm-v2 fp8 as typed (dma, sync=block), Server 0.9x 120 s, GIL watched ($((SECONDS - start)) s)"
g $((285 - (SECONDS - start))) --models dlrm-v2 --scale full --precisions fp8 --fractions 0.9 --seconds 120 --offline-seconds 8 --no-auto --out $OUT/c4_dlrm120_block.jsonl --gil-watch $OUT/gil_watch.txt
echo "total $((SECONDS - start)) s"
