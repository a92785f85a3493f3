#!/usr/bin/env bash
# Session 15, call 2: why DLRM-v2 fp8's batches run slower in a run than in a short timing.
# Call 1's timeline: in the CLI's Offline the GPU held a batch 99.4% of the time, so the host keeps
# it fed; but a 32,768-row batch took 1.557-1.631 ms against 1.337 ms timed at load (5 replays of
# one batch) and gpu.py's 1.391. Either one batch replayed again and again finds its rows in L2,
# or the GPU's clocks fall as it stays busy. nvidia-smi logs clocks, power and the reasons for
# lowered clocks through the whole call; gpu.py --sustain replays one batch, then 16 distinct
# batches, for 12 s each; then the CLI's Offline (20 s) with the timeline, now reporting items
# and padding, and with Offline queries queued in growing blocks.
set -u
start=$SECONDS
export PYTHONUNBUFFERED=1 PY=/tmp/v/bin/python RECSUITE_DATA_DIR=/tmp/data
[ -x /tmp/v/bin/python ] || { python3 -m venv /tmp/v && echo $(python3 -c 'import site;print(site.getsitepackages()[0])') > $(/tmp/v/bin/python -c 'import sysconfig;print(sysconfig.get_paths()["purelib"])')/base.pth && /tmp/v/bin/pip install -q --no-index --no-deps .whl/*.whl; }
/tmp/v/bin/pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null 2>&1
R=clocks_event_reasons.active
nvidia-smi --query-gpu=$R --format=csv >/dev/null 2>&1 || R=clocks_throttle_reasons.active
nvidia-smi --query-gpu=power.limit,clocks.max.sm,clocks.max.mem --format=csv
nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu,utilization.gpu,$R --format=csv,noheader -lms 250 > $OUT/smi.csv 2>&1 &
SMI=$!
mark() { echo "$(date +%H:%M:%S.%N | cut -c1-12) $*" | tee -a $OUT/marks.txt; }
mark "cuda tests"
timeout 120 $PY -m pytest -q -p no:cacheprovider tests/test_torch_cuda.py -k "timeline" 2>&1 | tail -2
mark "gpu.py sustain"
(cd benchmarks && timeout 240 $PY gpu.py --sections dlrm-v2 --dlrm-items 65536 --dlrm-batch 16384 --dlrm-variants 'dense=fp8' \
  --sustain 12 --out $OUT 2>&1 | grep -v -i warn | tail -8)
mark "CLI Offline 20 s"
printf 'dlrm-v2.Offline.min_duration = 20000\n' > /tmp/u.conf
timeout $((560 - (SECONDS - start))) $PY -m suite.cli run --model dlrm-v2 --backend torch-cuda --scale full --rows 131072 \
  --scenario offline --precision fp8 --option timeline=1 --user-conf /tmp/u.conf --output /tmp/res --no-progress 2>&1 | tail -2
mark "done"
$PY -c "
import json,glob; d=json.load(open(glob.glob('/tmp/res/**/Offline/performance/run_1/result.json', recursive=True)[0]))
print(d['performance']['metric']); print('timeline', d['backend'].get('gpu_timeline'))
h=d.get('harness', {}); print('harness', {k: h.get(k) for k in ('duration_s','batches','completed_queries','completed_items','gather_s','predict_s')})
"
cp -r /tmp/res $OUT/cli 2>/dev/null; find $OUT/cli -name '*.bin' -delete 2>/dev/null
kill $SMI
$PY - <<'PY'
import csv, os
rows = [r for r in csv.reader(open(os.environ['OUT'] + '/smi.csv')) if len(r) >= 7]
marks = [l.split(' ', 1) for l in open(os.environ['OUT'] + '/marks.txt')]
print('samples', len(rows))
for r in rows[::8]:
    print(' '.join(x.strip() for x in r[0:1]).split(' ')[-1], *[x.strip() for x in r[1:]])
PY
echo "total $((SECONDS - start)) s"
