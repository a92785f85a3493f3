#!/usr/bin/env bash
# Session 23, call 1: the Gluon kernel with specialized warps (a producer warp; one or two consumer
# warpgroups, free or in turns) against the unspecialized default: cuda tests first (a hang is cut
# by the timeout), then every Gluon shape timed on 8 MLPerf-size requests, then LoadGen at the 1 M
# cap with the fastest shape picked at load (tune=1) against the default, then the other cuda tests.
set -u
start=$SECONDS
. benchmarks/h200_env.sh
nvidia-smi --query-gpu=name,clocks.max.sm,power.limit --format=csv,noheader
echo "== gluon cuda tests ($((SECONDS - start)) s)"
timeout 150 $PY -m pytest -q -p no:cacheprovider -m cuda tests/test_kernels.py -k "gluon" --durations=8 2>&1 | tail -16 | tee $OUT/tests_gluon.txt
ok=$(grep -c " passed" $OUT/tests_gluon.txt)
echo "== hstu_gpu ($((SECONDS - start)) s)"
timeout 200 $PY benchmarks/hstu_gpu.py --scale 1000000 --requests 8 --tiles --tile-set default --gluon --batch 8 --seconds 1 2>&1 \
  | grep -v -i warn | tee $OUT/hstu_gpu.txt | tail -40
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
if [ "$ok" -gt 0 ]; then
  for v in "tuned --option tune=1" "default"; do
    name=${v%% *}; opts=${v#$name}
    echo "== Offline $name ($((SECONDS - start)) s)"
    timeout 120 $PY -m suite.cli run "${common[@]}" --scenario offline --system h200-$name $opts 2>&1 | grep -v -i warn | tail -1
    show /tmp/r/h200-$name/dlrm-v3/Offline/performance/run_1 2>&1 | tail -1 | tee -a $OUT/runs.jsonl
  done
fi
left=$((560 - (SECONDS - start)))
echo "== other cuda tests ($((SECONDS - start)) s, $left s left)"
[ $left -gt 30 ] && timeout $left $PY -m pytest -q -p no:cacheprovider -m cuda tests/test_kernels.py tests/test_torch_cuda.py -k "not gluon" --durations=8 2>&1 | tail -25 | tee $OUT/tests_other.txt
echo "total $((SECONDS - start)) s"
