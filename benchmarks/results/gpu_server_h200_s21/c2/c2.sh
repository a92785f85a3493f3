#!/usr/bin/env bash
# 1) At the 1 M cap, Offline 12 s three ways, with the GPU timeline recorded (--option timeline=1):
#    the default (four lanes, a compute stream each), one compute stream shared by the lanes, and
#    the default again (the spread between two like runs). 2) At the 100 M cap (the largest that
#    fits): the accuracy gate, Offline 12 s and Server at 0.9x for 45 s, with the attention of call 1.
set -u
start=$SECONDS
. benchmarks/h200_env.sh
printf 'dlrm-v3.Offline.min_duration = 12000\ndlrm-v3.Server.min_duration = 45000\n' > /tmp/v3.conf
common=(--model dlrm-v3 --backend torch-cuda --rows 256 --precision bf16 --output /tmp/r --data-dir /tmp/v3data
        --no-progress --overwrite --user-conf /tmp/v3.conf)
show() { $PY - "$1" <<'PY'
import json, sys
d = json.load(open(sys.argv[1] + "/result.json"))
perf, b, h = d.get("performance") or {}, (d.get("backend") or {}), d.get("harness") or {}
acc = d.get("accuracy") or {}
tl = (b.get("gpu_timeline") or {})
print(json.dumps({"run": sys.argv[1].split("/r/")[-1], "status": d.get("status"), "metric": (perf.get("metric") or {}).get("value"),
                  "validity": perf.get("validity"), "p99_ms": ((perf.get("latency_ns") or {}).get("99.00") or 0) / 1e6,
                  "mean_batch": round(h.get("mean_batch_items", 0), 2), "compute": b.get("compute"), "lanes": b.get("lanes"),
                  "bucket_ms": b.get("bucket_ms"), "host_us": b.get("host_us_per_batch"), "predict_us": b.get("predict_us_per_batch"), "timeline": {k: v for k, v in tl.items() if k != "series"},
                  **({k: acc.get(k) for k in ("ne", "accuracy", "gauc", "reference", "passed")} if acc else {})}))
PY
}
for v in "a --option timeline=1" "shared --option timeline=1 --option compute=shared" "b --option timeline=1"; do
  name=${v%% *}; opts=${v#* }
  echo "== 1 M Offline $name ($((SECONDS - start)) s)"
  timeout 100 $PY -m suite.cli run "${common[@]}" --scale 1000000 --scenario offline --system h200-$name $opts 2>&1 | grep -v -i warn | tail -1
  show /tmp/r/h200-$name/dlrm-v3/Offline/performance/run_1 2>&1 | tail -1 | tee -a $OUT/runs.jsonl
done
echo "== 100 M accuracy ($((SECONDS - start)) s)"
timeout 200 $PY -m suite.cli run "${common[@]}" --scale 100000000 --scenario offline --mode accuracy --system h200-100m 2>&1 | grep -v -i warn | tail -1
show /tmp/r/h200-100m/dlrm-v3/Offline/accuracy 2>&1 | tail -1 | tee -a $OUT/runs.jsonl
echo "== 100 M Offline ($((SECONDS - start)) s)"
timeout 120 $PY -m suite.cli run "${common[@]}" --scale 100000000 --scenario offline --system h200-100m 2>&1 | grep -v -i warn | tail -1
show /tmp/r/h200-100m/dlrm-v3/Offline/performance/run_1 2>&1 | tail -1 | tee -a $OUT/runs.jsonl
F=$($PY -c "import json;d=json.load(open('/tmp/r/h200-100m/dlrm-v3/Offline/performance/run_1/result.json'));print(round(0.9*d['performance']['metric']['value'],1) if d['status']=='valid' else 0)" 2>/dev/null || echo 0)
echo "== 100 M Server at $F ($((SECONDS - start)) s)"
left=$((590 - (SECONDS - start)))
[ "$F" != 0 ] && timeout $left $PY -m suite.cli run "${common[@]}" --scale 100000000 --scenario server --target-qps $F --system h200-100m 2>&1 | grep -v -i warn | tail -1
show /tmp/r/h200-100m/dlrm-v3/Server/performance/run_1 2>&1 | tail -1 | tee -a $OUT/runs.jsonl
cp /tmp/r/h200-100m/dlrm-v3/*/performance/run_1/mlperf_log_summary.txt $OUT/ 2>/dev/null
(cd /tmp/r && tar czf $OUT/runs.tgz --exclude='mlperf_log_accuracy.json' --exclude='mlperf_log_trace.json' . 2>/dev/null)
echo "total $((SECONDS - start)) s"
