#!/usr/bin/env bash
# Session 26, call 3: qk-fp8 with q quantized in the kernel and k by a bound from the weights, k's pass on whole
# rows: tests, k's pass timed, the forward profiled, Offline at 4 (default), 2 and 3 lanes, Server at 0.9x 45 s.
set -u
start=$SECONDS
. benchmarks/h200_env.sh
echo "== tests ($((SECONDS - start)) s)"
timeout 120 $PY -m pytest -q -p no:cacheprovider --tb=short -W "ignore::DeprecationWarning" tests/test_kernels.py \
  -k "quantize_spans or key_bounds or qk_fp8_is_the_plain" > $OUT/tests.txt 2>&1
grep -E "^E  |passed|failed" $OUT/tests.txt | head -12
timeout 60 $PY .device/spans.py 2>&1 | grep -v -i warn | tee $OUT/spans.txt
echo "== profile ($((SECONDS - start)) s)"
timeout 120 $PY benchmarks/hstu_gpu.py --scale 1000000 --requests 8 --gluon --qk-fp8 --profile --top 16 --batch 8 --seconds 1 \
  2>&1 | grep -v -i warn > $OUT/hstu_gpu.txt
grep -E "ms_per_batch|gpu_ms" $OUT/hstu_gpu.txt | cut -c1-240 | head -24
printf 'dlrm-v3.Offline.min_duration = 12000\ndlrm-v3.Server.min_duration = 45000\n' > /tmp/v3.conf
common=(--model dlrm-v3 --backend torch-cuda --rows 256 --precision bf16 --output /tmp/r --data-dir /tmp/v3data
        --no-progress --overwrite --user-conf /tmp/v3.conf --scale 1000000)
for v in "qk8 --option attention=qk-fp8" "qk8l2 --option attention=qk-fp8 --option lanes=2" "qk8l3 --option attention=qk-fp8 --option lanes=3"; do
  name=${v%% *}; opts=${v#$name}
  echo "== Offline $name ($((SECONDS - start)) s)"
  timeout 150 $PY -m suite.cli run "${common[@]}" --scenario offline --system h200-$name $opts 2>&1 | grep -v -i warn | tail -1
  $PY benchmarks/run_line.py /tmp/r/h200-$name/dlrm-v3/Offline/performance/run_1 | tee -a $OUT/runs.jsonl
done
F=$($PY -c "import json;d=json.load(open('/tmp/r/h200-qk8/dlrm-v3/Offline/performance/run_1/result.json'));print(round(0.9*d['performance']['metric']['value'],1) if d['status']=='valid' else 0)" 2>/dev/null || echo 0)
left=$((540 - (SECONDS - start)))
echo "== Server qk8 at $F ($((SECONDS - start)) s, $left s left)"
if [ "$F" != 0 ] && [ $left -gt 80 ]; then
  timeout $left $PY -m suite.cli run "${common[@]}" --scenario server --target-qps $F --system h200-qk8 --option attention=qk-fp8 2>&1 | grep -v -i warn | tail -1
  $PY benchmarks/run_line.py /tmp/r/h200-qk8/dlrm-v3/Server/performance/run_1 | tee -a $OUT/runs.jsonl
fi
(cd /tmp/r && tar czf $OUT/runs.tgz --exclude='mlperf_log_accuracy.json' --exclude='mlperf_log_trace.json' . 2>/dev/null)
echo "total $((SECONDS - start)) s"
