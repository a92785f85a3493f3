#!/usr/bin/env bash
# Session 28, call f: v in e4m3 as built on main (attention=qkv-fp8): its GPU tests, its kernel against
# qk-fp8 (the default) and bf16, then at the 1 M cap the accuracy gate and Offline 12 s with qkv-fp8,
# and Offline with the default in the same call.
set -u
start=$SECONDS
. benchmarks/h200_env.sh
echo "== cuda tests ($((SECONDS - start)) s)"
timeout 150 $PY -m pytest -q -p no:cacheprovider tests/test_kernels.py -k "qkv_fp8 or qk_fp8_is_the_plain or gluon_kernel_matches" 2>&1 | tail -4
echo "== kernel ($((SECONDS - start)) s)"
timeout 90 $PY .device/kt.py 2>&1 | grep -v -i warn | tee $OUT/kernel.json
printf 'dlrm-v3.Offline.min_duration = 12000\n' > /tmp/v3.conf
base=(--model dlrm-v3 --backend torch-cuda --rows 256 --precision bf16 --output /tmp/r --data-dir /tmp/v3data
      --no-progress --overwrite --user-conf /tmp/v3.conf --scale 1000000 --scenario offline)
echo "== 1M accuracy qkv-fp8 ($((SECONDS - start)) s)"
timeout 150 $PY -m suite.cli run "${base[@]}" --mode accuracy --system h200-qkv --option attention=qkv-fp8 2>&1 | grep -v -i warn | tail -1
$PY benchmarks/run_line.py /tmp/r/h200-qkv/dlrm-v3/Offline/accuracy | tee -a $OUT/runs.jsonl
for v in "qkv --option attention=qkv-fp8" "default" "qkv --option attention=qkv-fp8"; do
  name=${v%% *}; opts=${v#$name}
  left=$((560 - (SECONDS - start)))
  [ $left -lt 50 ] && { echo "skip $name ($left s left)"; continue; }
  echo "== 1M Offline $name ($((SECONDS - start)) s)"
  timeout $left $PY -m suite.cli run "${base[@]}" --system h200-$name $opts 2>&1 | grep -v -i warn | tail -1
  $PY benchmarks/run_line.py /tmp/r/h200-$name/dlrm-v3/Offline/performance/run_1 | tee -a $OUT/runs.jsonl
done
(cd /tmp/r && tar czf $OUT/runs.tgz --exclude='mlperf_log_accuracy.json' --exclude='mlperf_log_trace.json' . 2>/dev/null)
echo "total $((SECONDS - start)) s"
