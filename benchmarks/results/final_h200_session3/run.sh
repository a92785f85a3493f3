#!/usr/bin/env bash
# Final call on merged main: every cuda test; DLRM-v2 full tables in gpu.py (plain loop vs the fused
# variants, graph replay at 16,384/32,768 items, AUC, per-matmul table); then the CLI as typed.
set -u
start=$SECONDS
export PYTHONUNBUFFERED=1 PY=/tmp/v/bin/python S=/tmp/v/bin/suite RECSUITE_DATA_DIR=/tmp/data
git log --oneline -1 2>/dev/null > $OUT/commit.txt
(time timeout 165 $PY -m pytest -q -m cuda -p no:cacheprovider -x 2>&1 | tail -8) 2>&1 | tee $OUT/cuda_tests.txt
left=$(( 345 - (SECONDS - start) )); g=$(( left - 70 )); [ $g -gt 130 ] && g=130
echo "gpu.py budget $g s"
(cd benchmarks && timeout $g $PY gpu.py --sections dlrm-v2 --dlrm-items 65536 --dlrm-batch 16384 --layers --out $OUT \
  --dlrm-variants "dense=fp8,residual=bf16,fuse_last=0;dense=fp8,residual=fp8,fuse_last=1;dense=fp8,residual=bf16,fuse_last=0,gemm=cublas;dense=bf16,fuse_last=0;dense=bf16,fuse_last=0,gemm=cublas" \
  2>&1 | grep -v -i warn | tee $OUT/gpu_dlrm_v2.txt)
printf 'dlrm-v2.Offline.min_duration = 8000\n' > /tmp/u.conf
left=$(( 345 - (SECONDS - start) )); echo "== CLI fp8 offline as typed ($left s left)"
if [ $left -gt 30 ]; then
  (time timeout $left $S run --model dlrm-v2 --backend torch-cuda --scale 4000000 --rows 131072 --no-progress --output /tmp/r \
     --user-conf /tmp/u.conf --scenario offline --precision fp8 --system h200) 2>&1 | tail -4
  $S summary /tmp/r 2>&1 | tee $OUT/summary.txt
  cp /tmp/r/h200/dlrm-v2/Offline/performance/run_1/result.json $OUT/cli_fp8_offline.json 2>/dev/null
fi
