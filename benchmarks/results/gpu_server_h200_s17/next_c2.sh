#!/usr/bin/env bash
# Planned for the next H200 session: DLRM-v2 fp8 Offline from the CLI as typed (plus the timeline),
# min_duration 60 s, as session 17's call 3 (76,362.1 samples/s VALID over 132 s, whose last 62 s ran
# 4% faster than the whole): the timeline now covers the whole run in 10-s slices (`series`), to see
# where the first half lost its time (the auto target now comes from the probe's mean, so the run
# lasts about 92 s, not 132). nvidia-smi logs clocks and power. About 220 s on a fresh machine. Copy to .device/ and run with carry .whl, .device.
set -u
start=$SECONDS
export PYTHONUNBUFFERED=1 PY=/tmp/v/bin/python RECSUITE_DATA_DIR=/tmp/data
[ -x /tmp/v/bin/python ] || { python3 -m venv /tmp/v && echo $(python3 -c 'import site;print(site.getsitepackages()[0])') > $(/tmp/v/bin/python -c 'import sysconfig;print(sysconfig.get_paths()["purelib"])')/base.pth && /tmp/v/bin/pip install -q --no-index --no-deps .whl/*.whl; }
/tmp/v/bin/pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null 2>&1
R=clocks_event_reasons.active
nvidia-smi --query-gpu=$R --format=csv >/dev/null 2>&1 || R=clocks_throttle_reasons.active
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw,temperature.gpu,utilization.gpu,$R --format=csv,noheader -lms 1000 > $OUT/smi.csv 2>&1 &
SMI=$!
printf 'dlrm-v2.Offline.min_duration = 60000\n' > /tmp/u.conf
echo "== Offline 60 s, as typed but for the timeline ($((SECONDS - start)) s)"
timeout $((570 - (SECONDS - start))) $PY -m suite.cli run --model dlrm-v2 --backend torch-cuda --scale full --rows 131072 --precision fp8 \
  --output /tmp/res --no-progress --scenario offline --option timeline=1 --user-conf /tmp/u.conf 2>&1 | tail -1 | tee $OUT/offline.txt
find /tmp/res -name result.json -path '*performance*' -exec cp {} $OUT/offline_result.json \; 2>/dev/null
$PY -c "import json,sys; d=json.load(open(sys.argv[1])); t=d['backend']['gpu_timeline']; print({k: v for k, v in t.items() if k != 'series'}); [print(r) for r in t['series']]" $OUT/offline_result.json
kill $SMI
echo "total $((SECONDS - start)) s"
