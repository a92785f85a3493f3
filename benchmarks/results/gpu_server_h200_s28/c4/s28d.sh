#!/usr/bin/env bash
# Session 28: Server at 0.9x of Offline at the 1 M cap with the default (qk-fp8 without its passes),
# as long as one call allows (the longest Server run with this default at 1 M was 45 s).
set -u
start=$SECONDS
. benchmarks/h200_env.sh
base=(--model dlrm-v3 --backend torch-cuda --rows 256 --precision bf16 --output /tmp/r --data-dir /tmp/v3data
      --no-progress --overwrite)
dur=$((470 - (SECONDS - start)))
printf 'dlrm-v3.Server.min_duration = %d000\n' $dur > /tmp/v3b.conf
echo "== 1M Server at 963.2 (0.9 x 1,070.2), $dur s ($((SECONDS - start)) s)"
timeout $((585 - (SECONDS - start))) $PY -m suite.cli run "${base[@]}" --user-conf /tmp/v3b.conf --scale 1000000 --scenario server --target-qps 963.2 --system h200-1m 2>&1 | grep -v -i warn | tail -1
$PY benchmarks/run_line.py /tmp/r/h200-1m/dlrm-v3/Server/performance/run_1 | tee -a $OUT/runs.jsonl
(cd /tmp/r && tar czf $OUT/runs.tgz --exclude='mlperf_log_accuracy.json' --exclude='mlperf_log_trace.json' . 2>/dev/null)
echo "total $((SECONDS - start)) s"
