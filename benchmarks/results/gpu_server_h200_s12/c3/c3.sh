#!/usr/bin/env bash
# Session 12, call 3: dlrm-v2 fp8 as typed, Server at 0.9x of Offline for 300 s (the seventh
# session's VALID run, repeated), GIL watched.
set -u
start=$SECONDS
export PYTHONUNBUFFERED=1 PY=/tmp/v/bin/python RECSUITE_DATA_DIR=/tmp/data
python3 -m venv /tmp/v && echo $(python3 -c 'import site;print(site.getsitepackages()[0])') > $(/tmp/v/bin/python -c 'import sysconfig;print(sysconfig.get_paths()["purelib"])')/base.pth && /tmp/v/bin/pip install -q --no-index --no-deps .whl/*.whl && /tmp/v/bin/pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null 2>&1
echo "== dlrm-v2 fp8 as typed, Server 0.9x 300 s ($((SECONDS - start)) s)"
(cd benchmarks && timeout 500 $PY gpu_server.py --models dlrm-v2 --scale full --precisions fp8 --fractions 0.9 --seconds 300 \
  --offline-seconds 8 --no-auto --out $OUT/c3_dlrm300.jsonl --gil-watch $OUT/gil_watch.txt 2>&1 | grep -v -i warn | grep -v "^  warnings" | tail -8)
echo "total $((SECONDS - start)) s"
