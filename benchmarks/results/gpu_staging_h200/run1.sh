#!/usr/bin/env bash
# Device call 1 (one H200): torch-cuda's cuda tests; dlrm-v2 fp8 (4M-row cap) Offline and Server at
# 0.9x for 15 s with mapped staging (the new default) against copy staging (the old one); bf16
# rows under fp8 matmuls with the tile search on; bf16 fused with the tile search on.
set -u
export PYTHONUNBUFFERED=1 PY=/tmp/v/bin/python RECSUITE_DATA_DIR=/tmp/data
nvidia-smi --query-gpu=name,clocks.max.sm,power.limit,pcie.link.gen.max,pcie.link.width.max --format=csv,noheader
(time timeout 70 $PY -m pytest -q -m cuda -p no:cacheprovider tests/test_torch_cuda.py 2>&1 | tail -4) 2>&1 | tee $OUT/cuda_tests.txt
cd benchmarks
G="--models dlrm-v2 --scale 4000000 --rows 131072 --fractions 0.9 --seconds 15 --offline-seconds 4 --no-auto"
timeout 100 $PY gpu_server.py $G --precisions fp8 --variants 'staging=mapped;staging=copy' --out $OUT/server.jsonl 2>&1 | grep -v Warning | tee $OUT/server.txt
timeout 75 $PY gpu_server.py $G --precisions fp8 --variants 'rows=bf16,tune=1' --out $OUT/server.jsonl 2>&1 | grep -v Warning | tee -a $OUT/server.txt
timeout 60 $PY gpu_server.py $G --precisions bf16 --variants 'fused=1,tune=1' --out $OUT/server.jsonl 2>&1 | grep -v Warning | tee -a $OUT/server.txt
