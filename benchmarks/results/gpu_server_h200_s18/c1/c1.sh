#!/usr/bin/env bash
# Planned for the next H200 session: DLRM-v2 fp8 Server at 0.9x for 300 s with its defaults (graphs
# up to 65,536 items), as session 17's call 1 (INVALID: 19 issue stalls in clusters about every
# 35 s), now with pause_probe.py in a process of its own beside it (wall-clock gaps; gpu_server.py
# records each run's started_unix to line them up), the driver's garbage collections recorded, the
# GIL watch, and the timeline's 10-s series. About 480 s on a fresh machine; start it with at least
# 540 s of device time left. Copy to .device/ and run with carry .whl, .device, timeout 600.
set -u
start=$SECONDS
export PYTHONUNBUFFERED=1 PY=/tmp/v/bin/python RECSUITE_DATA_DIR=/tmp/data
[ -x /tmp/v/bin/python ] || { python3 -m venv /tmp/v && echo $(python3 -c 'import site;print(site.getsitepackages()[0])') > $(/tmp/v/bin/python -c 'import sysconfig;print(sysconfig.get_paths()["purelib"])')/base.pth && /tmp/v/bin/pip install -q --no-index --no-deps .whl/*.whl; }
/tmp/v/bin/pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null 2>&1
R=clocks_event_reasons.active
nvidia-smi --query-gpu=$R --format=csv >/dev/null 2>&1 || R=clocks_throttle_reasons.active
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw,temperature.gpu,utilization.gpu,$R --format=csv,noheader -lms 1000 > $OUT/smi.csv 2>&1 &
SMI=$!
$PY benchmarks/pause_probe.py --seconds 560 --out $OUT/probe.json --stop /tmp/probe.stop > $OUT/probe.txt 2>&1 &
PROBE=$!
echo "kernel $(uname -r); numa_balancing $(cat /proc/sys/kernel/numa_balancing 2>/dev/null); THP $(cat /sys/kernel/mm/transparent_hugepage/enabled) defrag $(cat /sys/kernel/mm/transparent_hugepage/defrag); $(lscpu | grep -i "numa node(s)")"
echo "== dlrm-v2 fp8 Server 0.9x 300 s, probe, GC, GIL watch, timeline ($((SECONDS - start)) s)"
(cd benchmarks && timeout $((575 - (SECONDS - start))) $PY gpu_server.py --models dlrm-v2 --scale full --precisions fp8 --fractions 0.9 --seconds 300 \
  --offline-seconds 10 --no-auto --variants "timeline=1" --gil-watch $OUT/gil_watch.txt --out $OUT/server.jsonl 2>&1 | grep -v -i warn | tee $OUT/server.txt | tail -14)
touch /tmp/probe.stop
wait $PROBE
cat $OUT/probe.txt
kill $SMI
echo "total $((SECONDS - start)) s"
