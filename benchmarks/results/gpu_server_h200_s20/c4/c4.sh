#!/usr/bin/env bash
# The attention's tile sweep with the packed-fp16 SiLU tiles (Tile(half=True)) beside the others,
# then LoadGen launching with the fastest tile measured at load (--option tune=1): the accuracy gate,
# Offline 12 s and Server at 0.9x for 60 s, at the 1 M cap, with the row kernels of call 3.
set -u
start=$SECONDS
. benchmarks/h200_env.sh
echo "== cuda tests ($((SECONDS - start)) s)"
timeout 100 $PY -m pytest -q -p no:cacheprovider -m cuda tests/test_kernels.py -k "half_tile or candidate_rows" 2>&1 | tail -2
SCALE=1000000 ROWS=256 SKIP_PLAIN=1 SKIP_TESTS=1 TILES=1 HSTU_ARGS="--tiles" TILE_BATCHES="8" TILE_SECONDS=1 \
  SECONDS_RUN=12 SERVER_SECONDS=60 FUSED="--option fused=1 --option tune=1" OUT=$OUT \
  timeout $((570 - (SECONDS - start))) bash benchmarks/dlrm_v3_h200.sh 2>&1 | grep -v -i warn | tee $OUT/v3.txt | tail -45
echo "total $((SECONDS - start)) s"
