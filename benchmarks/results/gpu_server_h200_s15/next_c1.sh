#!/usr/bin/env bash
# Planned for the next H200 session (not run in session 15): DLRM-v2 fp8 Server against the Offline
# as it is now (queries of MLPerf's mean 270 items, queued in growing blocks). Session 15's call 3
# found Offline 74,337 samples/s over 60 s, and Server at 0.9x of it fell behind within 230 s
# (62,800 answered a second) with its logs cut. Here, with the timeline: Offline 20 s, then Server
# at 0.85x and 0.9x for 60 s each. A GPU near 100% busy in Server says the GPU limits it (its
# batches smaller than Offline's cost more an item); a GPU with gaps says the host does. Then the
# same with graph_max=65536 (graphs up to 65,536 items: Offline's batches twice as large, Server's
# as large as the queue holds): are larger batches cheaper an item under the power limit?
# nvidia-smi logs clocks and power. Copy to .device/ and run with carry .whl, .device.
set -u
start=$SECONDS
export PYTHONUNBUFFERED=1 PY=/tmp/v/bin/python RECSUITE_DATA_DIR=/tmp/data
[ -x /tmp/v/bin/python ] || { python3 -m venv /tmp/v && echo $(python3 -c 'import site;print(site.getsitepackages()[0])') > $(/tmp/v/bin/python -c 'import sysconfig;print(sysconfig.get_paths()["purelib"])')/base.pth && /tmp/v/bin/pip install -q --no-index --no-deps .whl/*.whl; }
/tmp/v/bin/pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null 2>&1
R=clocks_event_reasons.active
nvidia-smi --query-gpu=$R --format=csv >/dev/null 2>&1 || R=clocks_throttle_reasons.active
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw,temperature.gpu,utilization.gpu,$R --format=csv,noheader -lms 500 > $OUT/smi.csv 2>&1 &
SMI=$!
echo "== dlrm-v2 fp8 with the timeline, then also graph_max=65536: Offline 20 s, Server 0.85x and 0.9x for 60 s ($((SECONDS - start)) s)"
(cd benchmarks && timeout 560 $PY gpu_server.py --models dlrm-v2 --scale full --precisions fp8 --fractions 0.85,0.9 --seconds 60 \
  --offline-seconds 20 --no-auto --variants "timeline=1;timeline=1,graph_max=65536" --out $OUT/server.jsonl 2>&1 | grep -v -i warn | tail -40)
kill $SMI
echo "total $((SECONDS - start)) s"
