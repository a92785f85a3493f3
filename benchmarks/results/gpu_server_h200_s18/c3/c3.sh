#!/usr/bin/env bash
# Session 18, call 3: (1) DLRM-v2 fp8 Offline from the CLI as typed (plus the timeline), min_duration
# 60 s (the run lasts about 90 s: the auto target is 1.4x the probe's mean), now that the Offline
# feed sets off no garbage collection (call 2's cut run: 0.5 s of collections in its first 3 s);
# the timeline's 10-s series; (2) the other four DeepRecSys models (MT-WnD, RMC3, DIN, DIEN) in
# Server at 0.5x of their Offline for 20 s, as time allows.
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
timeout 330 $PY -m suite.cli run --model dlrm-v2 --backend torch-cuda --scale full --rows 131072 --precision fp8 \
  --output /tmp/res --no-progress --scenario offline --option timeline=1 --user-conf /tmp/u.conf 2>&1 | tail -1 | tee $OUT/offline.txt
find /tmp/res -name result.json -path '*performance*' -exec cp {} $OUT/offline_result.json \; 2>/dev/null
$PY -c "
import json,sys; d=json.load(open(sys.argv[1])); t=d['backend']['gpu_timeline'] or {}
print({k: v for k, v in t.items() if k != 'series'}); [print(r) for r in t.get('series', [])]
print('gc', d['harness'].get('gc')); print('calibration', d.get('calibration'))" $OUT/offline_result.json
kill $SMI
echo "== DeepRecSys Server 20 s ($((SECONDS - start)) s)"
for m in mtwnd dlrm-rmc3 din dien; do
  [ $((SECONDS - start)) -lt 470 ] || { echo "$m: skipped, $((SECONDS - start)) s gone"; continue; }
  MODELS=$m SERVER_S=20 PER_MODEL_S=60 OUT=$OUT bash benchmarks/deeprecsys_server_h200.sh 2>&1 | grep -E "Offline|Server|exit|latency"
done
echo "total $((SECONDS - start)) s"
