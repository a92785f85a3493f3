#!/usr/bin/env bash
# Session 16, call 4: DLRM-v2 fp8 with its new default graph_max=65536 (no option given): Offline
# 10 s, then Server at 0.9x of it for 120 s, one load, with the timeline; nvidia-smi logs clocks.
set -u
start=$SECONDS
export PYTHONUNBUFFERED=1 PY=/tmp/v/bin/python RECSUITE_DATA_DIR=/tmp/data
[ -x /tmp/v/bin/python ] || { python3 -m venv /tmp/v && echo $(python3 -c 'import site;print(site.getsitepackages()[0])') > $(/tmp/v/bin/python -c 'import sysconfig;print(sysconfig.get_paths()["purelib"])')/base.pth && /tmp/v/bin/pip install -q --no-index --no-deps .whl/*.whl; }
/tmp/v/bin/pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null 2>&1
R=clocks_event_reasons.active
nvidia-smi --query-gpu=$R --format=csv >/dev/null 2>&1 || R=clocks_throttle_reasons.active
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw,temperature.gpu,utilization.gpu,$R --format=csv,noheader -lms 1000 > $OUT/smi.csv 2>&1 &
SMI=$!
echo "== dlrm-v2 fp8 defaults + timeline: Offline 10 s, Server 0.9x for 120 s ($((SECONDS - start)) s)"
(cd benchmarks && timeout $((280 - (SECONDS - start))) $PY gpu_server.py --models dlrm-v2 --scale full --precisions fp8 --fractions 0.9 --seconds 120 \
  --offline-seconds 10 --no-auto --variants "timeline=1" --out $OUT/server.jsonl 2>&1 | grep -v -i warn | tail -20)
kill $SMI
echo "total $((SECONDS - start)) s"
