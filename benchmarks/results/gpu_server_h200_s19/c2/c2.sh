#!/usr/bin/env bash
# Session 19, calls 2 and 3: DeepRecSys models (MODELS, four a call) in Server at 0.5x of a 5-s
# Offline of the same load for 60 s each, at their medium SLA, bf16, full scale, as
# benchmarks/deeprecsys_server_h200.sh runs them (session 18 held each for 20 s). About 100 s a model.
set -u
start=$SECONDS
export PYTHONUNBUFFERED=1 PY=/tmp/v/bin/python RECSUITE_DATA_DIR=/tmp/data
[ -x /tmp/v/bin/python ] || { python3 -m venv /tmp/v && echo $(python3 -c 'import site;print(site.getsitepackages()[0])') > $(/tmp/v/bin/python -c 'import sysconfig;print(sysconfig.get_paths()["purelib"])')/base.pth && /tmp/v/bin/pip install -q --no-index --no-deps .whl/*.whl; }
/tmp/v/bin/pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null 2>&1
R=clocks_event_reasons.active
nvidia-smi --query-gpu=$R --format=csv >/dev/null 2>&1 || R=clocks_throttle_reasons.active
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw,temperature.gpu,utilization.gpu,$R --format=csv,noheader -lms 1000 > $OUT/smi.csv 2>&1 &
SMI=$!
for m in ${MODELS:?}; do
  [ $((SECONDS - start)) -lt 440 ] || { echo "$m: skipped, $((SECONDS - start)) s gone"; continue; }
  MODELS=$m SERVER_S=60 OFFLINE_S=5 PER_MODEL_S=$((580 - (SECONDS - start))) OUT=$OUT bash benchmarks/deeprecsys_server_h200.sh 2>&1 | grep -E "Offline|Server|exit|latency|collections"
done
kill $SMI
echo "total $((SECONDS - start)) s"
