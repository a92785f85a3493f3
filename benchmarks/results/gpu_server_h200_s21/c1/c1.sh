#!/usr/bin/env bash
# The attention with q's block, the masked tail, each candidate's own key (now a diagonal tile on
# the tensor cores) and the output through descriptors: the cuda tests, the tile sweep (new shapes:
# 64x32 three and four stages, two stages at 128 registers, 64x64 two stages), the profile of a
# batch of 8; then LoadGen launching with the fastest tile measured at load (--option tune=1): the
# accuracy gate, Offline 12 s and Server at 0.9x for 45 s, at the 1 M cap.
set -u
start=$SECONDS
. benchmarks/h200_env.sh
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm --format=csv,noheader
echo "== cuda tests ($((SECONDS - start)) s)"
timeout 120 $PY -m pytest -q -p no:cacheprovider -m cuda tests/test_kernels.py tests/test_torch_cuda.py -k "hstu or dlrm_v3 or dlrm-v3 or candidate_rows or rows_sum or residual" 2>&1 | tail -2
TILES_S=220 SCALE=1000000 ROWS=256 SKIP_PLAIN=1 SKIP_TESTS=1 TILES=1 HSTU_ARGS="--tiles --profile --top 12" TILE_BATCHES="8" TILE_SECONDS=1 \
  SECONDS_RUN=12 SERVER_SECONDS=45 FUSED="--option fused=1 --option tune=1" OUT=$OUT \
  timeout $((575 - (SECONDS - start))) bash benchmarks/dlrm_v3_h200.sh 2>&1 | grep -v -i warn | tee $OUT/v3.txt | tail -60
echo "total $((SECONDS - start)) s"
