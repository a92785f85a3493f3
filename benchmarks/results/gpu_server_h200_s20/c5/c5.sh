#!/usr/bin/env bash
# dlrm-v3 at the 100 M cap (the largest that fits one H200 in bf16) with the fused token sums and
# residual: Offline 12 s only (the device time left), 256 MLPerf-size requests.
set -u
start=$SECONDS
. benchmarks/h200_env.sh
printf 'dlrm-v3.Offline.min_duration = 12000\n' > /tmp/v3.conf
timeout 220 $PY -m suite.cli run --model dlrm-v3 --backend torch-cuda --scale 100000000 --rows 256 --precision bf16 \
  --output /tmp/r --data-dir /tmp/v3data --no-progress --overwrite --user-conf /tmp/v3.conf --scenario offline --system h200-100m 2>&1 | grep -v -i warn | tail -4
cp /tmp/r/h200-100m/dlrm-v3/Offline/performance/run_1/mlperf_log_summary.txt $OUT/ 2>/dev/null
$PY -c "import json;d=json.load(open('/tmp/r/h200-100m/dlrm-v3/Offline/performance/run_1/result.json'));print(d['status'], d['performance']['metric'], {k: d['backend']['extra'].get(k) for k in ('load_s','capture_s')} if 'backend' in d else '')" 2>&1 | tail -2
echo "total $((SECONDS - start)) s"
