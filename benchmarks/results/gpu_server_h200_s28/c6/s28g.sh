#!/usr/bin/env bash
# Session 28, call g: v^T's pass 128 tokens a program; the kernel again, then Offline 12 s at the 1 M
# cap alternating attention=qkv-fp8 and the default (qk-fp8), two runs each, in one call.
set -u
start=$SECONDS
. benchmarks/h200_env.sh
echo "== kernel ($((SECONDS - start)) s)"
timeout 90 $PY .device/kt.py 2>&1 | grep -v -i warn | tee $OUT/kernel.json
printf 'dlrm-v3.Offline.min_duration = 12000\n' > /tmp/v3.conf
base=(--model dlrm-v3 --backend torch-cuda --rows 256 --precision bf16 --output /tmp/r --data-dir /tmp/v3data
      --no-progress --overwrite --user-conf /tmp/v3.conf --scale 1000000 --scenario offline)
for v in "qkv --option attention=qkv-fp8" "default" "qkv --option attention=qkv-fp8" "default"; do
  name=${v%% *}; opts=${v#$name}
  left=$((320 - (SECONDS - start)))
  [ $left -lt 50 ] && { echo "skip $name ($left s left)"; continue; }
  echo "== 1M Offline $name ($((SECONDS - start)) s)"
  timeout $left $PY -m suite.cli run "${base[@]}" --system h200-$name $opts 2>&1 | grep -v -i warn | tail -1
  $PY benchmarks/run_line.py /tmp/r/h200-$name/dlrm-v3/Offline/performance/run_1 | tee -a $OUT/runs.jsonl
done
(cd /tmp/r && tar czf $OUT/runs.tgz --exclude='mlperf_log_accuracy.json' --exclude='mlperf_log_trace.json' . 2>/dev/null)
echo "total $((SECONDS - start)) s"
