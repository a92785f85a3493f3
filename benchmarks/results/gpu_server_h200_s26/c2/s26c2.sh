#!/usr/bin/env bash
# Session 26, call 2: the Gluon attention writing bf16 (the new default) against fp32; qk-fp8 with q quantized in
# the kernel and k by a bound from the weights (one pass):
# cuda tests, the kernel and gate alone, the accuracy gate, Offline 12 s at the 1 M cap in one call.
set -u
start=$SECONDS
. benchmarks/h200_env.sh
echo "== tests ($((SECONDS - start)) s)"
timeout 120 $PY -m pytest -q -p no:cacheprovider --tb=short -W "ignore::DeprecationWarning" tests/test_kernels.py \
  -k "gluon_kernel_matches or qk_fp8_is_the_plain or gluon_tune or key_bounds or quantize_spans" > $OUT/tests.txt 2>&1
grep -E "^E  |passed|failed" $OUT/tests.txt | head -12
timeout 60 $PY .device/outtime.py 2>&1 | grep -v -i warn | tee $OUT/outtime.txt
printf 'dlrm-v3.Offline.min_duration = 12000\ndlrm-v3.Server.min_duration = 45000\n' > /tmp/v3.conf
common=(--model dlrm-v3 --backend torch-cuda --rows 256 --precision bf16 --output /tmp/r --data-dir /tmp/v3data
        --no-progress --overwrite --user-conf /tmp/v3.conf --scale 1000000)
echo "== accuracy base ($((SECONDS - start)) s)"
timeout 200 $PY -m suite.cli run "${common[@]}" --scenario offline --mode accuracy --system h200-base 2>&1 | grep -v -i warn | tail -1
$PY benchmarks/run_line.py /tmp/r/h200-base/dlrm-v3/Offline/accuracy | tee -a $OUT/runs.jsonl
for v in "base" "base32 --option attention_out=fp32" "qk8 --option attention=qk-fp8" "qk8tl --option attention=qk-fp8 --option timeline=1"; do
  name=${v%% *}; opts=${v#$name}
  left=$((560 - (SECONDS - start)))
  [ $left -lt 60 ] && { echo "skip $name ($left s left)"; continue; }
  echo "== Offline $name ($((SECONDS - start)) s)"
  timeout $left $PY -m suite.cli run "${common[@]}" --scenario offline --system h200-$name $opts 2>&1 | grep -v -i warn | tail -1
  $PY benchmarks/run_line.py /tmp/r/h200-$name/dlrm-v3/Offline/performance/run_1 | tee -a $OUT/runs.jsonl
done
left=$((560 - (SECONDS - start)))
if [ $left -gt 70 ]; then
  echo "== accuracy qk8 ($((SECONDS - start)) s)"
  timeout $left $PY -m suite.cli run "${common[@]}" --scenario offline --mode accuracy --system h200-qk8 --option attention=qk-fp8 2>&1 | grep -v -i warn | tail -1
  $PY benchmarks/run_line.py /tmp/r/h200-qk8/dlrm-v3/Offline/accuracy | tee -a $OUT/runs.jsonl
fi
(cd /tmp/r && tar czf $OUT/runs.tgz --exclude='mlperf_log_accuracy.json' --exclude='mlperf_log_trace.json' . 2>/dev/null)
echo "total $((SECONDS - start)) s"
