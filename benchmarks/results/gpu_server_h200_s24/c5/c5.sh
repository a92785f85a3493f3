#!/usr/bin/env bash
# Session 24, call 5: --option attention=qk-fp8 (now one consumer of 64 rows) at the 100 M cap (the
# largest that fits): the accuracy gate, Offline 12 s for qk-fp8 and the default in the same call,
# then Server at 0.9x of qk-fp8's Offline for what time is left.
set -u
start=$SECONDS
. benchmarks/h200_env.sh
printf 'dlrm-v3.Offline.min_duration = 12000\ndlrm-v3.Server.min_duration = 45000\n' > /tmp/v3.conf
common=(--model dlrm-v3 --backend torch-cuda --rows 256 --precision bf16 --output /tmp/r --data-dir /tmp/v3data
        --no-progress --overwrite --user-conf /tmp/v3.conf --scale 100000000)
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
timeout 200 $PY -m suite.cli run "${common[@]}" --scenario offline --mode accuracy --system h200-qk8 --option attention=qk-fp8 2>&1 | grep -v -i warn | tail -2
show /tmp/r/h200-qk8/dlrm-v3/Offline/accuracy 2>&1 | tail -1 | tee -a $OUT/runs.jsonl
for v in "qk8 --option attention=qk-fp8" "base"; do
  name=${v%% *}; opts=${v#$name}
  echo "== Offline $name ($((SECONDS - start)) s)"
  timeout 80 $PY -m suite.cli run "${common[@]}" --scenario offline --system h200-$name $opts 2>&1 | grep -v -i warn | tail -1
  show /tmp/r/h200-$name/dlrm-v3/Offline/performance/run_1 2>&1 | tail -1 | tee -a $OUT/runs.jsonl
done
F=$($PY -c "import json;d=json.load(open('/tmp/r/h200-qk8/dlrm-v3/Offline/performance/run_1/result.json'));print(round(0.9*d['performance']['metric']['value'],1) if d['status']=='valid' else 0)" 2>/dev/null || echo 0)
left=$((385 - (SECONDS - start)))
echo "== Server qk8 at $F ($((SECONDS - start)) s, $left s left)"
[ "$F" != 0 ] && [ $left -gt 80 ] && timeout $left $PY -m suite.cli run "${common[@]}" --scenario server --target-qps $F --system h200-qk8 --option attention=qk-fp8 2>&1 | grep -v -i warn | tail -1
show /tmp/r/h200-qk8/dlrm-v3/Server/performance/run_1 2>&1 | tail -1 | tee -a $OUT/runs.jsonl
(cd /tmp/r && tar czf $OUT/runs.tgz --exclude='mlperf_log_accuracy.json' --exclude='mlperf_log_trace.json' . 2>/dev/null)
echo "total $((SECONDS - start)) s"
