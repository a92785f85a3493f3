#!/usr/bin/env bash
# --devices 2 against --devices 1, back to back on one host (dlrm-v2, torch-cuda, fp8), Offline and
# Server at p99 <= 60 ms (Server asked for 0.8x the Offline rate of the same GPU count). Runs of
# 5 s (user.conf min_duration) at a row cap that generates in seconds; writes into $OUT (or ./out).
# Usage: bash benchmarks/scale_out_h200.sh [suite] [python]
set -u
S=${1:-suite}; PY=${2:-python}; OUT=${OUT:-out}; mkdir -p "$OUT"
export RECSUITE_DATA_DIR=${RECSUITE_DATA_DIR:-/tmp/data}
nvidia-smi -L | tee "$OUT/gpus.txt"
(timeout 70 $PY -m pytest -q -m cuda -p no:cacheprovider tests/test_placement.py 2>&1 | tail -3) | tee "$OUT/cuda_tests.txt"
printf '*.*.min_duration = 5000\n' > /tmp/scale_out_user.conf
A="--model dlrm-v2 --backend torch-cuda --scale 1000000 --precision fp8 --rows 131072 --no-progress --output /tmp/r --user-conf /tmp/scale_out_user.conf"
metric() { $PY -c "import json,sys;print(json.load(open(sys.argv[1]))['performance']['metric']['value'])" "/tmp/r/h200x$1/dlrm-v2/$2/performance/run_1/result.json" 2>/dev/null; }
for d in 1 2; do
  echo "== Offline --devices $d"; (time timeout 75 $S run $A --scenario offline --devices $d --system h200x$d) 2>&1 | tail -4
done
for d in 1 2; do
  Q=$($PY -c "import sys;print(round(0.8*float(sys.argv[1])))" "$(metric $d Offline)" 2>/dev/null)
  echo "== Server --devices $d --target-qps ${Q:-auto}"; (time timeout 45 $S run $A --scenario server --devices $d --system h200x$d --target-qps "${Q:-auto}") 2>&1 | tail -4
done
$S summary /tmp/r | tee "$OUT/summary.txt"
$PY - <<'PY' | tee "$OUT/scale_out.txt"
import json, pathlib
for scen in ("Offline", "Server"):
    v = {}
    for d in (1, 2):
        p = pathlib.Path(f"/tmp/r/h200x{d}/dlrm-v2/{scen}/performance/run_1/result.json")
        if not p.is_file():
            print(scen, d, "no result"); continue
        r = json.loads(p.read_text()); perf = r.get("performance") or {}
        v[d] = (perf.get("metric") or {}).get("value")
        lat = (perf.get("latency_ns") or {}).get("99.00")
        print(f"{scen} --devices {d}: {v[d]} queries/s, {r['harness']['items_per_second']:,.0f} items/s, status {r['status']}, "
              f"p99 {lat and lat / 1e6} ms, placement {json.dumps(r.get('placement'))}")
    if v.get(1) and v.get(2):
        print(f"{scen}: --devices 2 / --devices 1 = {v[2] / v[1]:.2f}x")
PY
for d in 1 2; do for s in Offline Server; do cp /tmp/r/h200x$d/dlrm-v2/$s/performance/run_1/result.json "$OUT/h200x${d}_$s.json" 2>/dev/null; done; done
