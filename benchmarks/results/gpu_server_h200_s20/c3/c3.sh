#!/usr/bin/env bash
# dlrm-v3 with the token sums in one Triton pass (rows_sum) and the residual add inside the output
# projection's cuBLAS call (addmm into x): the cuda tests, the profile of a batch of 8 (TF32 as the
# backend runs), then the accuracy gate, Offline 12 s and Server at 0.9x for 30 s at the 1 M cap.
set -u
start=$SECONDS
. benchmarks/h200_env.sh
echo "== cuda tests ($((SECONDS - start)) s)"
timeout 150 $PY -m pytest -q -p no:cacheprovider -m cuda tests/test_kernels.py tests/test_torch_cuda.py -k "rows_sum or residual or dlrm_v3 or dlrm-v3 or row_kernels" 2>&1 | tail -3
echo "== dlrm-v3, 1 M cap, bf16 ($((SECONDS - start)) s)"
SCALE=1000000 ROWS=256 SKIP_PLAIN=1 SKIP_TESTS=1 TILES=1 HSTU_ARGS="--profile --top 30" TILE_BATCHES="8" TILE_SECONDS=1 \
  SECONDS_RUN=12 SERVER_SECONDS=30 OUT=$OUT \
  timeout $((570 - (SECONDS - start))) bash benchmarks/dlrm_v3_h200.sh 2>&1 | grep -v -i warn | tee $OUT/v3.txt | tail -60
echo "total $((SECONDS - start)) s"
