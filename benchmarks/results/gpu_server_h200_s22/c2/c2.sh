#!/usr/bin/env bash
# The Gluon attention kernel's wait orders (0: as the Triton kernel; 1: the next scores issued before
# this block's SiLU; 2: FlashAttention-3's, the next SiLU beside p v) and 128-row shapes (two
# warpgroups sharing each block of keys and values: half the L2 traffic a product) against the
# Triton default, 8 MLPerf-size requests; the forward of a batch of 8 with the default Gluon shape,
# profiled. Then LoadGen at the 1 M cap: the accuracy gate with the Gluon kernel, Offline 12 s with
# its default shape, with the fastest shape timed at load (tune=1) and with the Triton kernel,
# Server at 0.9x of the first for 30 s; the cuda tests last.
set -u
start=$SECONDS
. benchmarks/h200_env.sh
echo "== hstu_gpu ($((SECONDS - start)) s)"
timeout 200 $PY benchmarks/hstu_gpu.py --scale 1000000 --requests 8 --tiles --tile-set default --gluon --profile --top 14 --batch 8 --seconds 1 2>&1 \
  | grep -v -i warn | tee $OUT/hstu_gpu.txt | tail -45
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
                  "mean_batch": round(h.get("mean_batch_items", 0), 2), "attention": b.get("attention"), "tile": b.get("tile"),
                  "tuned_ms": b.get("tuned_ms"), "bucket_ms": b.get("bucket_ms"),
                  **({k: acc.get(k) for k in ("ne", "accuracy", "gauc", "reference", "passed")} if acc else {})}))
PY
}
G="--option attention=gluon"
echo "== accuracy gluon ($((SECONDS - start)) s)"
timeout 170 $PY -m suite.cli run "${common[@]}" --scenario offline --mode accuracy --system h200-gluon $G 2>&1 | grep -v -i warn | tail -2
show /tmp/r/h200-gluon/dlrm-v3/Offline/accuracy 2>&1 | tail -1 | tee -a $OUT/runs.jsonl
for v in "gluon $G" "gluon-tuned $G --option tune=1" "triton --option attention=model"; do
  name=${v%% *}; opts=${v#* }
  echo "== Offline $name ($((SECONDS - start)) s)"
  timeout 100 $PY -m suite.cli run "${common[@]}" --scenario offline --system h200-$name $opts 2>&1 | grep -v -i warn | tail -1
  show /tmp/r/h200-$name/dlrm-v3/Offline/performance/run_1 2>&1 | tail -1 | tee -a $OUT/runs.jsonl
done
F=$($PY -c "import json;d=json.load(open('/tmp/r/h200-gluon/dlrm-v3/Offline/performance/run_1/result.json'));print(round(0.9*d['performance']['metric']['value'],1) if d['status']=='valid' else 0)" 2>/dev/null || echo 0)
left=$((500 - (SECONDS - start)))
echo "== Server gluon at $F ($((SECONDS - start)) s, $left s left)"
[ "$F" != 0 ] && [ $left -gt 70 ] && timeout $left $PY -m suite.cli run "${common[@]}" --scenario server --target-qps $F --system h200-gluon $G 2>&1 | grep -v -i warn | tail -1
show /tmp/r/h200-gluon/dlrm-v3/Server/performance/run_1 2>&1 | tail -1 | tee -a $OUT/runs.jsonl
cp /tmp/r/h200-gluon/dlrm-v3/*/performance/run_1/mlperf_log_summary.txt $OUT/ 2>/dev/null
(cd /tmp/r && tar czf $OUT/runs.tgz --exclude='mlperf_log_accuracy.json' --exclude='mlperf_log_trace.json' . 2>/dev/null)
left=$((585 - (SECONDS - start)))
echo "== cuda tests ($((SECONDS - start)) s, $left s left)"
[ $left -gt 20 ] && timeout $left $PY -m pytest -q -p no:cacheprovider -m cuda tests/test_kernels.py -k "gluon" --durations=6 2>&1 | tail -14 | tee $OUT/tests.txt
echo "total $((SECONDS - start)) s"
