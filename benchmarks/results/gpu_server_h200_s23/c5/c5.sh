#!/usr/bin/env bash
# Session 23, call 5: the committed kernels (one block walk for both, _walk) on the GPU: the Gluon
# cuda tests, then the Gluon shapes timed on 8 MLPerf-size requests.
set -u
start=$SECONDS
. benchmarks/h200_env.sh
echo "== gluon cuda tests ($((SECONDS - start)) s)"
timeout 90 $PY -m pytest -q -p no:cacheprovider -m cuda tests/test_kernels.py -k "gluon" 2>&1 | tail -3 | tee $OUT/tests_gluon.txt
echo "== hstu_gpu ($((SECONDS - start)) s)"
timeout 80 $PY benchmarks/hstu_gpu.py --scale 1000000 --requests 8 --tiles --tile-set default --gluon --batch 8 --seconds 1 2>&1 \
  | grep -v -i warn | grep hstu_attention | tee $OUT/hstu_gpu.txt
echo "total $((SECONDS - start)) s"
