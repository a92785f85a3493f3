#!/usr/bin/env bash
# dlrm-v2 fp8, 1M-row cap, --devices 1 (one GPU worker process): Server for 300 s at 0.9x the
# Offline rate measured by the same command for 10 s in the call before (39,622 samples/s).
set -u
export PYTHONUNBUFFERED=1 PY=/tmp/v/bin/python RECSUITE_DATA_DIR=/tmp/data
S=/tmp/v/bin/suite
printf '*.*.min_duration = 300000\n' > /tmp/srv.conf
A="--model dlrm-v2 --backend torch-cuda --scale 1000000 --precision fp8 --rows 131072 --no-progress --output /tmp/r"
(time timeout 420 $S run $A --scenario server --devices 1 --system dev1 --target-qps 35660 --user-conf /tmp/srv.conf) 2>&1 | tail -4
f=/tmp/r/dev1/dlrm-v2/Server/performance/run_1/result.json; cp $f $OUT/dev1_Server_300s.json
cp /tmp/r/dev1/dlrm-v2/Server/performance/run_1/mlperf_log_summary.txt $OUT/
$PY -c "
import json,sys; r=json.load(open(sys.argv[1])); h=r.get('harness') or {}; p=r.get('performance') or {}
print(r['status'], p.get('metric'), 'p99 ms', (p.get('latency_ns') or {}).get('99.00', 0)/1e6, {k: h.get(k) for k in ('mean_batch_items','sut_latency_p50_ms','sut_latency_p99_ms','issue_gap_max_ms','duration_s')})
" $f | tee $OUT/server300.txt
