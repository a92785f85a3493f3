#!/usr/bin/env bash
# Device call 2 (one H200): the defaults chosen from call 1 (copy staging, eight lanes, the tiles
# call 1's search picked, baked in): the touched cuda tests, then dlrm-v2 fp8 (4M-row cap) Offline
# for 8 s and Server at 0.9x of it for as long as the call's 300 s leave (at most 240 s).
set -u
start=$SECONDS
export PYTHONUNBUFFERED=1 PY=/tmp/v/bin/python RECSUITE_DATA_DIR=/tmp/data
(time timeout 40 $PY -m pytest -q -m cuda -p no:cacheprovider tests/test_torch_cuda.py -k "fused_by_default or every_staging" 2>&1 | tail -3) 2>&1 | tee $OUT/cuda_tests.txt
S=$(( 300 - 15 - (SECONDS - start) - 55 )); [ $S -gt 240 ] && S=240
echo "Server seconds: $S"
cd benchmarks
timeout $(( S + 50 )) $PY gpu_server.py --models dlrm-v2 --scale 4000000 --rows 131072 --precisions fp8 --fractions 0.9 \
  --seconds $S --offline-seconds 8 --no-auto --out $OUT/server.jsonl 2>&1 | grep -v Warning | tee $OUT/server.txt
