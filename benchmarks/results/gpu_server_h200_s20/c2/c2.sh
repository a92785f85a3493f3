#!/usr/bin/env bash
# Where a batch of 8 MLPerf-size dlrm-v3 requests spends its GPU time now (bf16, fused, TF32 default):
# the 40 largest kernels; then the same with the fp8 attention's kernels (quantizing split out).
set -u
start=$SECONDS
. benchmarks/h200_env.sh
timeout 200 $PY benchmarks/hstu_gpu.py --scale 1000000 --batch 8 --seconds 1 --profile --top 45 2>&1 | grep -v -i warn | tee $OUT/profile_bf16.txt
echo "total $((SECONDS - start)) s"
