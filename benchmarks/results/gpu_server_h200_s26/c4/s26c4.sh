#!/usr/bin/env bash
# Session 26, call 4: attention=auto is now qk-fp8 on sm_90 (q quantized in the kernel, k by a bound from the
# weights, bf16 output). The 100 M cap (the largest that fits): accuracy gate and Offline 12 s with the default;
# then the 1 M cap: Offline with the default and with attention=gluon (bf16) in the same call.
set -u
start=$SECONDS
. benchmarks/h200_env.sh
printf 'dlrm-v3.Offline.min_duration = 12000\ndlrm-v3.Server.min_duration = 45000\n' > /tmp/v3.conf
base=(--model dlrm-v3 --backend torch-cuda --rows 256 --precision bf16 --output /tmp/r --data-dir /tmp/v3data
      --no-progress --overwrite --user-conf /tmp/v3.conf)
echo "== 100M accuracy default ($((SECONDS - start)) s)"
timeout 200 $PY -m suite.cli run "${base[@]}" --scale 100000000 --scenario offline --mode accuracy --system h200-100m 2>&1 | grep -v -i warn | tail -1
$PY benchmarks/run_line.py /tmp/r/h200-100m/dlrm-v3/Offline/accuracy | tee -a $OUT/runs.jsonl
echo "== 100M Offline default ($((SECONDS - start)) s)"
timeout 150 $PY -m suite.cli run "${base[@]}" --scale 100000000 --scenario offline --system h200-100m 2>&1 | grep -v -i warn | tail -1
$PY benchmarks/run_line.py /tmp/r/h200-100m/dlrm-v3/Offline/performance/run_1 | tee -a $OUT/runs.jsonl
for v in "default" "gluon --option attention=gluon"; do
  name=${v%% *}; opts=${v#$name}
  left=$((470 - (SECONDS - start)))
  [ $left -lt 60 ] && { echo "skip $name ($left s left)"; continue; }
  echo "== 1M Offline $name ($((SECONDS - start)) s)"
  timeout $left $PY -m suite.cli run "${base[@]}" --scale 1000000 --scenario offline --system h200-$name $opts 2>&1 | grep -v -i warn | tail -1
  $PY benchmarks/run_line.py /tmp/r/h200-$name/dlrm-v3/Offline/performance/run_1 | tee -a $OUT/runs.jsonl
done
(cd /tmp/r && tar czf $OUT/runs.tgz --exclude='mlperf_log_accuracy.json' --exclude='mlperf_log_trace.json' . 2>/dev/null)
echo "total $((SECONDS - start)) s"
