# Device call 2 (one H200): a 300-s DLRM-v2 Server run from the CLI at the sweep's best VALID point
# (0.9 x the sweep's fp8 Offline, 34,876 -> 31,388 queries/s), then a 10-s Offline run of the same data.
export PYTHONUNBUFFERED=1 RECSUITE_DATA_DIR=/tmp/data S=/tmp/v/bin/suite
printf 'dlrm-v2.Server.min_duration = 300000\n' > /tmp/server300.conf
printf 'dlrm-v2.Offline.min_duration = 10000\n' > /tmp/offline10.conf
A="--model dlrm-v2 --backend torch-cuda --scale 4000000 --precision fp8 --rows 131072 --no-progress --output /tmp/r"
echo "suite run $A --scenario server --target-qps 31388 --user-conf server300.conf --system h200-300s"
(time timeout 370 $S run $A --scenario server --target-qps 31388 --user-conf /tmp/server300.conf --system h200-300s) 2>&1 | tail -5
cp /tmp/r/h200-300s/dlrm-v2/Server/performance/run_1/result.json $OUT/server_300s.json
cp /tmp/r/h200-300s/dlrm-v2/Server/performance/run_1/mlperf_log_summary.txt $OUT/server_300s_summary.txt
(time timeout 40 $S run $A --scenario offline --user-conf /tmp/offline10.conf --system h200-10s) 2>&1 | tail -5
cp /tmp/r/h200-10s/dlrm-v2/Offline/performance/run_1/result.json $OUT/offline_10s.json
$S summary /tmp/r | tee $OUT/summary.txt
