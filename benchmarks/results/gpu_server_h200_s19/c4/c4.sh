#!/usr/bin/env bash
# Session 19, call 4 (the device time left, about 350 s): DLRM-v2 fp8 Offline from the CLI as typed
# (plus the timeline), min_duration 20 s, with the feed reading LoadGen's lists 65,536 samples at a
# time (session 18's call 3 had one 162-ms idle gap and 91.7% busy in its first 10 s).
set -u
start=$SECONDS
export PYTHONUNBUFFERED=1 PY=/tmp/v/bin/python RECSUITE_DATA_DIR=/tmp/data
[ -x /tmp/v/bin/python ] || { python3 -m venv /tmp/v && echo $(python3 -c 'import site;print(site.getsitepackages()[0])') > $(/tmp/v/bin/python -c 'import sysconfig;print(sysconfig.get_paths()["purelib"])')/base.pth && /tmp/v/bin/pip install -q --no-index --no-deps .whl/*.whl; }
/tmp/v/bin/pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null 2>&1
printf 'dlrm-v2.Offline.min_duration = 20000\n' > /tmp/u.conf
echo "== Offline 20 s, as typed but for the timeline ($((SECONDS - start)) s)"
timeout $((262 - (SECONDS - start))) $PY -m suite.cli run --model dlrm-v2 --backend torch-cuda --scale full --rows 131072 --precision fp8 \
  --output /tmp/res4 --no-progress --scenario offline --option timeline=1 --user-conf /tmp/u.conf 2>&1 | tail -1 | tee $OUT/offline.txt
echo "ran until $((SECONDS - start)) s"
find /tmp/res4 -name result.json -path '*performance*' -exec cp {} $OUT/offline_result.json \; 2>/dev/null
$PY -c "
import json,sys; d=json.load(open(sys.argv[1])); t=d['backend']['gpu_timeline'] or {}
print({k: v for k, v in t.items() if k != 'series'}); [print(r) for r in t.get('series', [])]
print('latency_ns', d['performance'].get('latency_ns')); print('gc', d['harness'].get('gc')); print('load_s', d['backend'].get('load_s'), 'capture_s', d['backend'].get('capture_s'))" $OUT/offline_result.json
echo "total $((SECONDS - start)) s"
