#!/usr/bin/env bash
# The Gluon attention kernel (backends/kernels/hstu_wg.py: asynchronous products, the SiLU beside
# them): its cuda tests against the plain path and the Triton kernel; its launch shapes against the
# Triton default on 8 MLPerf-size requests, and the fused forward of a batch of 8 with it (profiled);
# then, if the tests passed, LoadGen at the 1 M cap: the accuracy gate with it, Offline 12 s with it
# and with the Triton kernel (the ratio in one call), Server at 0.9x of its Offline for 30 s.
set -u
start=$SECONDS
. benchmarks/h200_env.sh
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm --format=csv,noheader
echo "== cuda tests ($((SECONDS - start)) s)"
timeout 200 $PY -m pytest -q -p no:cacheprovider -m cuda tests/test_kernels.py -k "gluon or hstu_attention_kernel" 2>&1 | tail -25 | tee $OUT/tests.txt
echo "== hstu_gpu ($((SECONDS - start)) s)"
timeout 160 $PY benchmarks/hstu_gpu.py --scale 1000000 --tiles --tile-set default --gluon --profile --top 14 --batch 8 --seconds 1 2>&1 \
  | grep -v -i warn | tee $OUT/hstu_gpu.txt | tail -40
grep -q " passed" $OUT/tests.txt && ! grep -q "failed" $OUT/tests.txt || { echo "tests did not pass: no LoadGen runs"; exit 0; }
printf 'dlrm-v3.Offline.min_duration = 12000\ndlrm-v3.Server.min_duration = 30000\n' > /tmp/v3.conf
common=(--model dlrm-v3 --backend torch-cuda --rows 256 --precision bf16 --output /tmp/r --data-dir /tmp/v3data
        --no-progress --overwrite --user-conf /tmp/v3.conf --scale 1000000)
show() { $PY - "$1" <<'PY'
import json, sys
d = json.load(open(sys.argv[1] + "/result.json"))
perf, b, h = d.get("performance") or {}, (d.get("backend") or {}), d.get("harness") or {}
acc = d.get("accuracy") or {}
print(json.dumps({"run": sys.argv[1].split("/r/")[-1], "status": d.get("status"), "metric": (perf.get("metric") or {}).get("value"),
                  "validity": perf.get("validity"), "p99_ms": ((perf.get("latency_ns") or {}).get("99.00") or 0) / 1e6,
                  "mean_batch": round(h.get("mean_batch_items", 0), 2), "attention": b.get("attention"), "bucket_ms": b.get("bucket_ms"),
                  **({k: acc.get(k) for k in ("ne", "accuracy", "gauc", "reference", "passed")} if acc else {})}))
PY
}
G="--option attention=gluon"
echo "== accuracy gluon ($((SECONDS - start)) s)"
timeout 170 $PY -m suite.cli run "${common[@]}" --scenario offline --mode accuracy --system h200-gluon $G 2>&1 | grep -v -i warn | tail -2
show /tmp/r/h200-gluon/dlrm-v3/Offline/accuracy 2>&1 | tail -1 | tee -a $OUT/runs.jsonl
for v in "gluon $G" "triton --option attention=model"; do
  name=${v%% *}; opts=${v#* }
  echo "== Offline $name ($((SECONDS - start)) s)"
  timeout 90 $PY -m suite.cli run "${common[@]}" --scenario offline --system h200-$name $opts 2>&1 | grep -v -i warn | tail -1
  show /tmp/r/h200-$name/dlrm-v3/Offline/performance/run_1 2>&1 | tail -1 | tee -a $OUT/runs.jsonl
done
F=$($PY -c "import json;d=json.load(open('/tmp/r/h200-gluon/dlrm-v3/Offline/performance/run_1/result.json'));print(round(0.9*d['performance']['metric']['value'],1) if d['status']=='valid' else 0)" 2>/dev/null || echo 0)
left=$((585 - (SECONDS - start)))
echo "== Server gluon at $F ($((SECONDS - start)) s, $left s left)"
[ "$F" != 0 ] && [ $left -gt 60 ] && timeout $left $PY -m suite.cli run "${common[@]}" --scenario server --target-qps $F --system h200-gluon $G 2>&1 | grep -v -i warn | tail -1
show /tmp/r/h200-gluon/dlrm-v3/Server/performance/run_1 2>&1 | tail -1 | tee -a $OUT/runs.jsonl
cp /tmp/r/h200-gluon/dlrm-v3/*/performance/run_1/mlperf_log_summary.txt $OUT/ 2>/dev/null
(cd /tmp/r && tar czf $OUT/runs.tgz --exclude='mlperf_log_accuracy.json' --exclude='mlperf_log_trace.json' . 2>/dev/null)
echo "total $((SECONDS - start)) s"
