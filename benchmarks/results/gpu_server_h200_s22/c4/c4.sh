#!/usr/bin/env bash
# Offline's batch size for jagged requests picked by multiply-adds a millisecond (the timing
# batches' requests differ in length) against a batch of 7 (what the pick by requests gave in the
# better runs before): dlrm-v3 at the 1 M cap, 12 s each, one call.
set -u
start=$SECONDS
. benchmarks/h200_env.sh
printf 'dlrm-v3.Offline.min_duration = 12000\n' > /tmp/v3.conf
common=(--model dlrm-v3 --backend torch-cuda --rows 256 --precision bf16 --output /tmp/r --data-dir /tmp/v3data
        --no-progress --overwrite --user-conf /tmp/v3.conf --scale 1000000 --scenario offline)
show() { $PY - "$1" <<'PY'
import json, sys
d = json.load(open(sys.argv[1] + "/result.json"))
perf, b, h = d.get("performance") or {}, (d.get("backend") or {}), d.get("harness") or {}
print(json.dumps({"run": sys.argv[1].split("/r/")[-1], "status": d.get("status"), "metric": (perf.get("metric") or {}).get("value"),
                  "validity": perf.get("validity"), "mean_batch": round(h.get("mean_batch_items", 0), 2),
                  "max_batch": (d.get("settings") or {}).get("max_batch_items"), "bucket_ms": b.get("bucket_ms"), "bucket_tmac": b.get("bucket_tmac")}))
PY
}
for v in "work" "seven --max-batch-items 7" "work2"; do
  name=${v%% *}; opts=${v#$name}
  echo "== Offline $name ($((SECONDS - start)) s)"
  timeout 110 $PY -m suite.cli run "${common[@]}" --system h200-$name $opts 2>&1 | grep -v -i warn | tail -1
  show /tmp/r/h200-$name/dlrm-v3/Offline/performance/run_1 2>&1 | tail -1 | tee -a $OUT/runs.jsonl
  [ $((SECONDS - start)) -gt 150 ] && break
done
echo "total $((SECONDS - start)) s"
