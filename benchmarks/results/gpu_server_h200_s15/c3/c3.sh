#!/usr/bin/env bash
# Session 15, call 3: DLRM-v2 fp8 as typed, with the query library laid stratified (its mean query
# now MLPerf's 270 items, against 280.7 before) and Offline queries queued in growing blocks.
# gpu_server.py: Offline 60 s, then Server at 0.9x of it for 240 s; then the CLI's Offline for 30 s
# with the timeline. nvidia-smi logs clocks and power throughout.
set -u
start=$SECONDS
export PYTHONUNBUFFERED=1 PY=/tmp/v/bin/python RECSUITE_DATA_DIR=/tmp/data
[ -x /tmp/v/bin/python ] || { python3 -m venv /tmp/v && echo $(python3 -c 'import site;print(site.getsitepackages()[0])') > $(/tmp/v/bin/python -c 'import sysconfig;print(sysconfig.get_paths()["purelib"])')/base.pth && /tmp/v/bin/pip install -q --no-index --no-deps .whl/*.whl; }
/tmp/v/bin/pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null 2>&1
R=clocks_event_reasons.active
nvidia-smi --query-gpu=$R --format=csv >/dev/null 2>&1 || R=clocks_throttle_reasons.active
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw,temperature.gpu,utilization.gpu,$R --format=csv,noheader -lms 500 > $OUT/smi.csv 2>&1 &
SMI=$!
echo "== gpu_server.py as typed: Offline 60 s, Server 0.9x 240 s ($((SECONDS - start)) s)"
(cd benchmarks && timeout 420 $PY gpu_server.py --models dlrm-v2 --scale full --precisions fp8 --fractions 0.9 --seconds 240 \
  --offline-seconds 60 --no-auto --out $OUT/typed.jsonl 2>&1 | grep -v -i warn | tail -6)
echo "== the CLI's Offline, 30 s, with the timeline ($((SECONDS - start)) s)"
printf 'dlrm-v2.Offline.min_duration = 30000\n' > /tmp/u.conf
timeout $((575 - (SECONDS - start))) $PY -m suite.cli run --model dlrm-v2 --backend torch-cuda --scale full --rows 131072 \
  --scenario offline --precision fp8 --option timeline=1 --user-conf /tmp/u.conf --output /tmp/res --no-progress 2>&1 | tail -2
$PY -c "
import json,glob; d=json.load(open(glob.glob('/tmp/res/**/Offline/performance/run_1/result.json', recursive=True)[0]))
print(d['performance']['metric']); print('timeline', d['backend'].get('gpu_timeline'))
h=d.get('harness', {}); print('harness', {k: h.get(k) for k in ('duration_s','batches','completed_queries','completed_items','mean_batch_items')})
"
mkdir -p $OUT/cli; cp $(dirname $(ls /tmp/res/*/dlrm-v2/Offline/performance/run_1/result.json))/{result.json,config.json,mlperf_log_summary.txt} $OUT/cli/ 2>/dev/null
kill $SMI
echo "total $((SECONDS - start)) s"
