#!/usr/bin/env bash
# Session 24, call 4: as call 3, with k scaled per request and head (no scale loads in the loop): the cuda tests
# (and call 3's two failures), the kernel and the forward against bf16's, then LoadGen at the 1 M cap:
# the gate, Offline 12 s for qk-fp8 and the default in the same call, Server at 0.9x for 30 s.
set -u
start=$SECONDS
. benchmarks/h200_env.sh
echo "== tests ($((SECONDS - start)) s)"
timeout 120 $PY -m pytest -q -p no:cacheprovider --tb=short -W "ignore::DeprecationWarning" tests/test_kernels.py tests/test_dlrm_v3_fp8.py \
  -k "qk_fp8 or quantize_spans or fp8_products or fp8_linear" > $OUT/tests_full.txt 2>&1
grep -E "^E  |passed|failed" $OUT/tests_full.txt | head -30
echo "== kernel ($((SECONDS - start)) s)"
timeout 170 $PY benchmarks/hstu_gpu.py --scale 1000000 --requests 8 --tiles --tile-set default --gluon --qk-fp8 --profile --top 12 --batch 8 --seconds 1 2>&1 \
  | grep -v -i warn | tee $OUT/hstu_gpu.txt | grep -E "qk_fp8|wg 128x64 s4 o2 ws\"|ms_per_batch|gpu_ms_per_batch|_hstu_ws_fwd|quantize|error" | cut -c1-400
printf 'dlrm-v3.Offline.min_duration = 12000\ndlrm-v3.Server.min_duration = 30000\n' > /tmp/v3.conf
common=(--model dlrm-v3 --backend torch-cuda --rows 256 --precision bf16 --output /tmp/r --data-dir /tmp/v3data
        --no-progress --overwrite --user-conf /tmp/v3.conf --scale 1000000)
show() { $PY - "$1" <<'PY'
import json, sys
d = json.load(open(sys.argv[1] + "/result.json"))
perf, b, h = d.get("performance") or {}, (d.get("backend") or {}), d.get("harness") or {}
f = (b.get("extra") or b).get("fused") or {}
acc = d.get("accuracy") or {}
print(json.dumps({"run": sys.argv[1].split("/r/")[-1], "status": d.get("status"), "metric": (perf.get("metric") or {}).get("value"),
                  "validity": perf.get("validity"), "p99_ms": ((perf.get("latency_ns") or {}).get("99.00") or 0) / 1e6,
                  "mean_batch": round(h.get("mean_batch_items", 0), 2), "tile": f.get("tile"), "attention": f.get("attention"),
                  **({k: acc.get(k) for k in ("ne", "accuracy", "gauc", "reference", "passed")} if acc else {})}))
PY
}
echo "== accuracy qk8 ($((SECONDS - start)) s)"
timeout 170 $PY -m suite.cli run "${common[@]}" --scenario offline --mode accuracy --system h200-qk8 --option attention=qk-fp8 2>&1 | grep -v -i warn | tail -2
show /tmp/r/h200-qk8/dlrm-v3/Offline/accuracy 2>&1 | tail -1 | tee -a $OUT/runs.jsonl
for v in "qk8 --option attention=qk-fp8" "base"; do
  name=${v%% *}; opts=${v#$name}
  echo "== Offline $name ($((SECONDS - start)) s)"
  timeout 90 $PY -m suite.cli run "${common[@]}" --scenario offline --system h200-$name $opts 2>&1 | grep -v -i warn | tail -1
  show /tmp/r/h200-$name/dlrm-v3/Offline/performance/run_1 2>&1 | tail -1 | tee -a $OUT/runs.jsonl
done
F=$($PY -c "import json;d=json.load(open('/tmp/r/h200-qk8/dlrm-v3/Offline/performance/run_1/result.json'));print(round(0.9*d['performance']['metric']['value'],1) if d['status']=='valid' else 0)" 2>/dev/null || echo 0)
left=$((430 - (SECONDS - start)))
echo "== Server qk8 at $F ($((SECONDS - start)) s, $left s left)"
[ "$F" != 0 ] && [ $left -gt 60 ] && timeout $left $PY -m suite.cli run "${common[@]}" --scenario server --target-qps $F --system h200-qk8 --option attention=qk-fp8 2>&1 | grep -v -i warn | tail -1
show /tmp/r/h200-qk8/dlrm-v3/Server/performance/run_1 2>&1 | tail -1 | tee -a $OUT/runs.jsonl
(cd /tmp/r && tar czf $OUT/runs.tgz --exclude='mlperf_log_accuracy.json' --exclude='mlperf_log_trace.json' . 2>/dev/null)
echo "total $((SECONDS - start)) s"
