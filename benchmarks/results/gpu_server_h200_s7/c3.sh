#!/usr/bin/env bash
# Session 7, call 3: dlrm-v2 fp8 as typed (dma staging), Server at 0.9x Offline for 300 s again, with the
# driver's GIL watched (gil_watch.py: every thread's stack whenever the GIL is out of reach for 40 ms).
set -u
start=$SECONDS
export PYTHONUNBUFFERED=1 PY=/tmp/v/bin/python RECSUITE_DATA_DIR=/tmp/data
python3 -m venv /tmp/v && echo $(python3 -c 'import site;print(site.getsitepackages()[0])') > $(/tmp/v/bin/python -c 'import sysconfig;print(sysconfig.get_paths()["purelib"])')/base.pth && /tmp/v/bin/pip install -q --no-index --no-deps .whl/*.whl && /tmp/v/bin/pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null 2>&1
git log --oneline -1 | cut -c1-80; git status --short | head -5
cd benchmarks
g() { timeout "$1" $PY gpu_server.py "${@:2}" 2>&1 | grep -v -i warn | grep -v "^  warnings" | tail -14; }
echo "== dlrm-v2 fp8 as typed (dma staging), Server 0.9x 300 s, GIL watched ($((SECONDS - start)) s)"
g $((590 - (SECONDS - start))) --models dlrm-v2 --scale full --precisions fp8 --fractions 0.9 --seconds 300 --offline-seconds 8 --no-auto --out $OUT/c3_dlrm300_dma.jsonl --gil-watch $OUT/gil_watch.txt
echo "total $((SECONDS - start)) s"
