#!/usr/bin/env bash
# In-process torch-cuda against --devices 1 (one GPU worker process): Offline 10 s, then Server at
# 0.9x that Offline for 45 s, dlrm-v2 fp8 at a 1M-row cap, from the CLI.
set -u
export PYTHONUNBUFFERED=1 PY=/tmp/v/bin/python RECSUITE_DATA_DIR=/tmp/data
S=/tmp/v/bin/suite
printf '*.*.min_duration = 10000\n' > /tmp/off.conf
printf '*.*.min_duration = 45000\n' > /tmp/srv.conf
A="--model dlrm-v2 --backend torch-cuda --scale 1000000 --precision fp8 --rows 131072 --no-progress --output /tmp/r"
metric() { $PY -c "import json,sys;print(json.load(open(sys.argv[1]))['performance']['metric']['value'])" "/tmp/r/$1/dlrm-v2/$2/performance/run_1/result.json" 2>/dev/null; }
for p in inproc dev1; do
  X=""; [ $p = dev1 ] && X="--devices 1"
  echo "== Offline $p"; (time timeout 100 $S run $A --scenario offline $X --system $p --user-conf /tmp/off.conf) 2>&1 | tail -3
  Q=$($PY -c "import sys;print(round(0.9*float(sys.argv[1])))" "$(metric $p Offline)")
  echo "== Server $p at $Q"; (time timeout 110 $S run $A --scenario server $X --system $p --target-qps $Q --user-conf /tmp/srv.conf) 2>&1 | tail -3
done
$S summary /tmp/r | tee $OUT/summary.txt
for p in inproc dev1; do for s in Offline Server; do
  f=/tmp/r/$p/dlrm-v2/$s/performance/run_1/result.json; cp $f $OUT/${p}_$s.json 2>/dev/null
  $PY -c "
import json,sys; r=json.load(open(sys.argv[1])); h=r.get('harness') or {}; p=r.get('performance') or {}
print(sys.argv[2], sys.argv[3], r['status'], p.get('metric'), 'p99', (p.get('latency_ns') or {}).get('99.00'), {k: h.get(k) for k in ('mean_batch_items','gather_s','predict_s','sut_latency_p50_ms','sut_latency_p99_ms','issue_gap_max_ms','duration_s')}, (r.get('settings') or {}).get('batches_in_flight'))
" $f $p $s 2>&1 | tee -a $OUT/hostpath.txt
done; done
