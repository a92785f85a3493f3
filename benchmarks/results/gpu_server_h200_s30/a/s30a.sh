#!/usr/bin/env bash
# Session 30, call a: the v^T pass timed (vt29.py), qkv-fp8's gate at the 100 M cap, Offline 100 M
# qkv-fp8 then the default, then the kernel CUDA tests verbosely (names before each test), a
# traceback after 40 s in one test, killed (SIGKILL: s29a's SIGTERM did not stop pytest) at the end.
set -u
start=$SECONDS
. benchmarks/h200_env.sh
nvidia-smi --query-gpu=name,memory.used,utilization.gpu --format=csv
echo "== v^T pass and kernels ($((SECONDS - start)) s)"
timeout -s KILL 100 $PY .device/vt29.py 2>&1 | grep -v -i warn | tee $OUT/kernel.json
printf 'dlrm-v3.Offline.min_duration = 12000\n' > /tmp/v3.conf
base=(--model dlrm-v3 --backend torch-cuda --rows 256 --precision bf16 --output /tmp/r --data-dir /tmp/v3data
      --no-progress --overwrite --user-conf /tmp/v3.conf --scale 100000000 --scenario offline)
echo "== 100M accuracy qkv-fp8 ($((SECONDS - start)) s)"
timeout -s KILL 200 $PY -m suite.cli run "${base[@]}" --mode accuracy --system h200-qkv --option attention=qkv-fp8 2>&1 | grep -v -i warn | tail -1
$PY benchmarks/run_line.py /tmp/r/h200-qkv/dlrm-v3/Offline/accuracy | tee -a $OUT/runs.jsonl
for v in "qkv --option attention=qkv-fp8" "default"; do
  name=${v%% *}; opts=${v#$name}
  left=$((400 - (SECONDS - start)))
  [ $left -lt 60 ] && { echo "skip $name ($left s left)"; continue; }
  echo "== 100M Offline $name ($((SECONDS - start)) s)"
  timeout -s KILL $left $PY -m suite.cli run "${base[@]}" --system h200-$name $opts 2>&1 | grep -v -i warn | tail -1
  $PY benchmarks/run_line.py /tmp/r/h200-$name/dlrm-v3/Offline/performance/run_1 | tee -a $OUT/runs.jsonl
done
(cd /tmp/r && tar czf $OUT/runs.tgz --exclude='mlperf_log_accuracy.json' --exclude='mlperf_log_trace.json' . 2>/dev/null)
left=$((575 - (SECONDS - start)))
echo "== cuda tests, $left s ($((SECONDS - start)) s)"
timeout -s KILL $left $PY -m pytest -v -p no:cacheprovider -rfE -o faulthandler_timeout=40 tests/test_kernels.py tests/test_dlrm_v3_fp8.py > $OUT/tests.txt 2>&1
echo "pytest rc $?"; grep -E "passed|failed|FAILED|ERROR|Timeout|^Thread|^  File" $OUT/tests.txt | tail -40
echo "total $((SECONDS - start)) s"
