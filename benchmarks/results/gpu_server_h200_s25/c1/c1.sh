#!/usr/bin/env bash
# Session 25, call 1: q, k and v in fp8 in the Gluon kernel (--option attention=qkv-fp8): the cuda
# tests, the kernel's shapes against qk-fp8 and bf16, the forward profiled, then LoadGen at the 1 M
# cap: the gate, Offline 12 s for qkv-fp8 and qk-fp8 in the same call, Server at 0.9x if time is left.
set -u
start=$SECONDS
. benchmarks/h200_env.sh
echo "== tests ($((SECONDS - start)) s)"
timeout 150 $PY -m pytest -q -p no:cacheprovider --tb=short -W "ignore::DeprecationWarning" tests/test_kernels.py \
  -k "qk_fp8 or quantize_columns or quantize_spans or gluon_kernel" > $OUT/tests_full.txt 2>&1
grep -E "^E  |passed|failed" $OUT/tests_full.txt | head -30
echo "== kernel ($((SECONDS - start)) s)"
timeout 200 $PY benchmarks/hstu_gpu.py --scale 1000000 --requests 8 --tiles --tile-set default --gluon --qk-fp8 --qkv-fp8 \
  --profile --top 14 --batch 8 --seconds 1 2>&1 | grep -v -i warn > $OUT/hstu_gpu.txt
grep -E "qk_fp8|qkv_fp8|quantize_columns|wg 128x64 s4 o2 ws\"|ms_per_batch|share|error|Error" $OUT/hstu_gpu.txt | cut -c1-330
printf 'dlrm-v3.Offline.min_duration = 12000\ndlrm-v3.Server.min_duration = 30000\n' > /tmp/v3.conf
common=(--model dlrm-v3 --backend torch-cuda --rows 256 --precision bf16 --output /tmp/r --data-dir /tmp/v3data
        --no-progress --overwrite --user-conf /tmp/v3.conf --scale 1000000)
echo "== accuracy qkv8 ($((SECONDS - start)) s)"
timeout 170 $PY -m suite.cli run "${common[@]}" --scenario offline --mode accuracy --system h200-qkv8 --option attention=qkv-fp8 2>&1 | grep -v -i warn | tail -2
$PY benchmarks/run_line.py /tmp/r/h200-qkv8/dlrm-v3/Offline/accuracy | tee -a $OUT/runs.jsonl
for v in "qkv8 --option attention=qkv-fp8" "qk8 --option attention=qk-fp8"; do
  name=${v%% *}; opts=${v#$name}
  echo "== Offline $name ($((SECONDS - start)) s)"
  timeout 80 $PY -m suite.cli run "${common[@]}" --scenario offline --system h200-$name $opts 2>&1 | grep -v -i warn | tail -1
  $PY benchmarks/run_line.py /tmp/r/h200-$name/dlrm-v3/Offline/performance/run_1 | tee -a $OUT/runs.jsonl
done
F=$($PY -c "import json;d=json.load(open('/tmp/r/h200-qkv8/dlrm-v3/Offline/performance/run_1/result.json'));print(round(0.9*d['performance']['metric']['value'],1) if d['status']=='valid' else 0)" 2>/dev/null || echo 0)
left=$((500 - (SECONDS - start)))
echo "== Server qkv8 at $F ($((SECONDS - start)) s, $left s left)"
if [ "$F" != 0 ] && [ $left -gt 70 ]; then
  timeout $left $PY -m suite.cli run "${common[@]}" --scenario server --target-qps $F --system h200-qkv8 --option attention=qkv-fp8 2>&1 | grep -v -i warn | tail -1
  $PY benchmarks/run_line.py /tmp/r/h200-qkv8/dlrm-v3/Server/performance/run_1 | tee -a $OUT/runs.jsonl
fi
(cd /tmp/r && tar czf $OUT/runs.tgz --exclude='mlperf_log_accuracy.json' --exclude='mlperf_log_trace.json' . 2>/dev/null)
echo "total $((SECONDS - start)) s"
