#!/usr/bin/env bash
# Session 30, call b: the qkv-fp8 CUDA tests (never seen to pass), then Server with attention=qkv-fp8
# at 0.9 x its 100 M Offline (1,136.0 -> 1,022.4), 1 M cap, for what the call's time allows.
set -u
start=$SECONDS
. benchmarks/h200_env.sh
echo "== qkv-fp8 cuda tests ($((SECONDS - start)) s)"
timeout -s KILL 90 $PY -m pytest -v -p no:cacheprovider -rfE -o faulthandler_timeout=40 tests/test_kernels.py -k "qkv or v_columns or value_bounds or attention_option" > $OUT/tests.txt 2>&1
echo "pytest rc $?"; grep -E "PASSED|FAILED|ERROR|passed|failed|Timeout" $OUT/tests.txt | tail -12
base=(--model dlrm-v3 --backend torch-cuda --rows 256 --precision bf16 --output /tmp/r --data-dir /tmp/v3data
      --no-progress --overwrite --option attention=qkv-fp8)
dur=$((300 - (SECONDS - start)))
printf 'dlrm-v3.Server.min_duration = %d000\n' $dur > /tmp/v3b.conf
echo "== 1M Server at 1,022.4 (0.9 x 1,136.0) qkv-fp8, $dur s ($((SECONDS - start)) s)"
timeout -s KILL $((375 - (SECONDS - start))) $PY -m suite.cli run "${base[@]}" --user-conf /tmp/v3b.conf --scale 1000000 --scenario server --target-qps 1022.4 --system h200-qkv 2>&1 | grep -v -i warn | tail -1
$PY benchmarks/run_line.py /tmp/r/h200-qkv/dlrm-v3/Server/performance/run_1 | tee -a $OUT/runs.jsonl
(cd /tmp/r && tar czf $OUT/runs.tgz --exclude='mlperf_log_accuracy.json' --exclude='mlperf_log_trace.json' . 2>/dev/null)
echo "total $((SECONDS - start)) s"
