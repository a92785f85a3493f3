#!/usr/bin/env bash
# Session 17, call 4: (1) the fused lookup's new default blocks for DeepRecSys's short rows
# (gpu.py --sections lookups: RMC1 and RMC2 in fp32, bf16 and fp8 rows against the copy rate);
# (2) DLRM-v2 fp8 Server at 0.9x for 200 s (the budget left; call 1 ran 300), now with the driver's garbage
# collections recorded, the GIL watch, and pause_probe.py in a process of its own beside it.
set -u
start=$SECONDS
export PYTHONUNBUFFERED=1 PY=/tmp/v/bin/python RECSUITE_DATA_DIR=/tmp/data
[ -x /tmp/v/bin/python ] || { python3 -m venv /tmp/v && echo $(python3 -c 'import site;print(site.getsitepackages()[0])') > $(/tmp/v/bin/python -c 'import sysconfig;print(sysconfig.get_paths()["purelib"])')/base.pth && /tmp/v/bin/pip install -q --no-index --no-deps .whl/*.whl; }
/tmp/v/bin/pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null 2>&1
echo "== lookups ($((SECONDS - start)) s)"
(cd benchmarks && timeout 150 $PY gpu.py --sections lookups --out $OUT 2>&1 | grep -v -i warn | tee $OUT/lookups.txt | tail -12)
R=clocks_event_reasons.active
nvidia-smi --query-gpu=$R --format=csv >/dev/null 2>&1 || R=clocks_throttle_reasons.active
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw,temperature.gpu,utilization.gpu,$R --format=csv,noheader -lms 1000 > $OUT/smi.csv 2>&1 &
SMI=$!
$PY benchmarks/pause_probe.py --seconds 450 --out $OUT/probe.json --stop /tmp/probe.stop > $OUT/probe.txt 2>&1 &
PROBE=$!
echo "== dlrm-v2 fp8 Server 0.9x 200 s, GC recorded, GIL watch, pause probe ($((SECONDS - start)) s)"
(cd benchmarks && timeout $((470 - (SECONDS - start))) $PY gpu_server.py --models dlrm-v2 --scale full --precisions fp8 --fractions 0.9 --seconds 200 \
  --offline-seconds 10 --no-auto --variants "timeline=1" --gil-watch $OUT/gil_watch.txt --out $OUT/server.jsonl 2>&1 | grep -v -i warn | tee $OUT/server.txt | tail -14)
touch /tmp/probe.stop
wait $PROBE
cat $OUT/probe.txt
kill $SMI
echo "total $((SECONDS - start)) s"
