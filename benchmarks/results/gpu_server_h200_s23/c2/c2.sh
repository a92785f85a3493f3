#!/usr/bin/env bash
# Session 23, call 2: every Gluon shape (now with 128 key columns a step) on 8 MLPerf-size requests,
# the forward of a batch of 8 profiled; then LoadGen at the 1 M cap with the new default (128-row
# tiles, specialized warps): the accuracy gate, Offline 12 s (default, then tune=1, then default
# again: the order's drift shows), Server at 0.9x of the first for 30 s.
set -u
start=$SECONDS
. benchmarks/h200_env.sh
echo "== hstu_gpu ($((SECONDS - start)) s)"
timeout 150 $PY benchmarks/hstu_gpu.py --scale 1000000 --requests 8 --tiles --tile-set default --gluon --profile --top 12 --batch 8 --seconds 1 2>&1 \
  | grep -v -i warn | tee $OUT/hstu_gpu.txt | tail -45
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
                  "mean_batch": round(h.get("mean_batch_items", 0), 2), "tile": f.get("tile"), "tuned_ms": f.get("tuned_ms"),
                  "bucket_ms": (b.get("extra") or b).get("bucket_ms"),
                  **({k: acc.get(k) for k in ("ne", "accuracy", "gauc", "reference", "passed")} if acc else {})}))
PY
}
echo "== accuracy ($((SECONDS - start)) s)"
timeout 170 $PY -m suite.cli run "${common[@]}" --scenario offline --mode accuracy --system h200-ws 2>&1 | grep -v -i warn | tail -2
show /tmp/r/h200-ws/dlrm-v3/Offline/accuracy 2>&1 | tail -1 | tee -a $OUT/runs.jsonl
for v in "ws" "tuned --option tune=1" "ws2"; do
  name=${v%% *}; opts=${v#$name}
  echo "== Offline $name ($((SECONDS - start)) s)"
  timeout 120 $PY -m suite.cli run "${common[@]}" --scenario offline --system h200-$name $opts 2>&1 | grep -v -i warn | tail -1
  show /tmp/r/h200-$name/dlrm-v3/Offline/performance/run_1 2>&1 | tail -1 | tee -a $OUT/runs.jsonl
done
F=$($PY -c "import json;d=json.load(open('/tmp/r/h200-ws/dlrm-v3/Offline/performance/run_1/result.json'));print(round(0.9*d['performance']['metric']['value'],1) if d['status']=='valid' else 0)" 2>/dev/null || echo 0)
left=$((575 - (SECONDS - start)))
echo "== Server at $F ($((SECONDS - start)) s, $left s left)"
[ "$F" != 0 ] && [ $left -gt 70 ] && timeout $left $PY -m suite.cli run "${common[@]}" --scenario server --target-qps $F --system h200-ws 2>&1 | grep -v -i warn | tail -1
show /tmp/r/h200-ws/dlrm-v3/Server/performance/run_1 2>&1 | tail -1 | tee -a $OUT/runs.jsonl
cp /tmp/r/h200-ws/dlrm-v3/Server/performance/run_1/mlperf_log_summary.txt $OUT/server_summary.txt 2>/dev/null
(cd /tmp/r && tar czf $OUT/runs.tgz --exclude='mlperf_log_accuracy.json' --exclude='mlperf_log_trace.json' . 2>/dev/null)
echo "total $((SECONDS - start)) s"
