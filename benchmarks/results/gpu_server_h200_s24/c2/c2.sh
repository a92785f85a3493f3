#!/usr/bin/env bash
# Session 24, call 2: the STU products in fp8 (--option projections=fp8 | fp8-out): the GEMMs alone,
# the cuda tests of the new paths, then LoadGen at the 1 M cap: the accuracy gate and Offline 12 s
# for each, against the default (bf16 products) in the same call.
set -u
start=$SECONDS
. benchmarks/h200_env.sh
echo "== gemm ($((SECONDS - start)) s)"
timeout 100 $PY benchmarks/stu_fp8_gemm.py --tokens 70000 16384 2>&1 | grep -v -i warn | tee $OUT/stu_fp8_gemm.txt
echo "== tests ($((SECONDS - start)) s)"
timeout 120 $PY -m pytest -q -p no:cacheprovider tests/test_kernels.py tests/test_dlrm_v3_fp8.py -k "fp8_row_kernels or fp8_products or row_kernels_match or fused_dlrm_v3_forward_matches or test_dlrm_v3_fp8 or stays_near_fp32 or quantize_rows or fp8_linear or gate_shares" 2>&1 | tail -6 | tee $OUT/tests.txt
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
                  "mean_batch": round(h.get("mean_batch_items", 0), 2), "tile": f.get("tile"), "projections": f.get("projections"),
                  **({k: acc.get(k) for k in ("ne", "accuracy", "gauc", "reference", "passed")} if acc else {})}))
PY
}
for v in "fp8 --option projections=fp8" "fp8out --option projections=fp8-out"; do
  name=${v%% *}; opts=${v#$name}
  echo "== accuracy $name ($((SECONDS - start)) s)"
  timeout 170 $PY -m suite.cli run "${common[@]}" --scenario offline --mode accuracy --system h200-$name $opts 2>&1 | grep -v -i warn | tail -2
  show /tmp/r/h200-$name/dlrm-v3/Offline/accuracy 2>&1 | tail -1 | tee -a $OUT/runs.jsonl
  for sys in "$name" base; do
    o=$opts; [ $sys = base ] && o=""
    [ $sys = base ] && [ -f /tmp/r/h200-base/dlrm-v3/Offline/performance/run_1/result.json ] && continue
    echo "== Offline $sys ($((SECONDS - start)) s)"
    timeout 100 $PY -m suite.cli run "${common[@]}" --scenario offline --system h200-$sys $o 2>&1 | grep -v -i warn | tail -1
    show /tmp/r/h200-$sys/dlrm-v3/Offline/performance/run_1 2>&1 | tail -1 | tee -a $OUT/runs.jsonl
  done
done
(cd /tmp/r && tar czf $OUT/runs.tgz --exclude='mlperf_log_accuracy.json' --exclude='mlperf_log_trace.json' . 2>/dev/null)
echo "total $((SECONDS - start)) s"
