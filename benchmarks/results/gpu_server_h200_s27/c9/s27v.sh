#!/usr/bin/env bash
# Session 27, validation call: Server at 0.9x of Offline with the default (qk-fp8 without its passes),
# at the 100 M cap (the largest that fits; not run before with this default) for 120 s, then at the
# 1 M cap for as long as the call has left (the longest Server run with this default was 45 s).
set -u
start=$SECONDS
. benchmarks/h200_env.sh
base=(--model dlrm-v3 --backend torch-cuda --rows 256 --precision bf16 --output /tmp/r --data-dir /tmp/v3data
      --no-progress --overwrite)
printf 'dlrm-v3.Server.min_duration = 120000\n' > /tmp/v3a.conf
echo "== 100M Server at 953.4 (0.9 x 1,059.3), 120 s ($((SECONDS - start)) s)"
timeout 300 $PY -m suite.cli run "${base[@]}" --user-conf /tmp/v3a.conf --scale 100000000 --scenario server --target-qps 953.4 --system h200-100m 2>&1 | grep -v -i warn | tail -1
$PY benchmarks/run_line.py /tmp/r/h200-100m/dlrm-v3/Server/performance/run_1 | tee -a $OUT/runs.jsonl
left=$((470 - (SECONDS - start)))
dur=$((left - 50))
if [ $dur -gt 60 ]; then
  printf 'dlrm-v3.Server.min_duration = %d000\n' $dur > /tmp/v3b.conf
  echo "== 1M Server at 963.2 (0.9 x 1,070.2), $dur s ($((SECONDS - start)) s)"
  timeout $left $PY -m suite.cli run "${base[@]}" --user-conf /tmp/v3b.conf --scale 1000000 --scenario server --target-qps 963.2 --system h200-1m 2>&1 | grep -v -i warn | tail -1
  $PY benchmarks/run_line.py /tmp/r/h200-1m/dlrm-v3/Server/performance/run_1 | tee -a $OUT/runs.jsonl
fi
(cd /tmp/r && tar czf $OUT/runs.tgz --exclude='mlperf_log_accuracy.json' --exclude='mlperf_log_trace.json' . 2>/dev/null)
echo "total $((SECONDS - start)) s"
