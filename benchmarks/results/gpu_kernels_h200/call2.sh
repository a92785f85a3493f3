#!/usr/bin/env bash
# Device call 2, NOT RUN (the session's device budget was under the floor when the machine was
# free; call 1 stopped at a stale helper in benchmarks/gpu.py after the cuda kernel tests passed).
# Run from the repository root after the set-up line of HELPERS.md / the docs: the kernel tests marked cuda; DLRM-v2 at full scale (26 tables, 204 M rows,
# bf16 on the GPU) in benchmarks/gpu.py: the plain loop, then each fused variant timed as a CUDA
# graph at 16,384 and 32,768 items with its AUC against the model's own labels, a per-matmul table
# (Triton as tuned, a tile sweep, cuBLAS alone and with its epilogue kernel) and a per-kernel
# profile; then LoadGen Offline from the CLI as typed (fp8, then bf16; 4 M-row cap, 8-s runs).
set -u
start=$SECONDS
export PYTHONUNBUFFERED=1 PY=/tmp/v/bin/python S=/tmp/v/bin/suite RECSUITE_DATA_DIR=/tmp/data
(timeout 45 $PY -m pytest -q -m cuda -p no:cacheprovider tests/test_kernels.py 2>&1 | tail -4) 2>&1 | tee $OUT/cuda_tests.txt
(cd benchmarks && timeout 105 $PY gpu.py --sections dlrm-v2 --dlrm-items 65536 --dlrm-batch 16384 --layers --profile --out $OUT \
  --dlrm-variants "dense=fp8,residual=bf16,fuse_last=0;dense=fp8,residual=x0-fp8,fuse_last=0;dense=fp8,residual=fp8,fuse_last=0;dense=fp8,residual=fp8,fuse_last=1;dense=fp8,residual=bf16,fuse_last=0,gemm=cublas;dense=bf16,fuse_last=0;dense=bf16,fuse_last=1;dense=bf16,fuse_last=0,gemm=cublas" \
  2>&1 | grep -v -i warn | tee $OUT/call2.txt)
printf 'dlrm-v2.Offline.min_duration = 8000\n' > /tmp/u.conf
A="--model dlrm-v2 --backend torch-cuda --scale 4000000 --rows 131072 --no-progress --output /tmp/r --user-conf /tmp/u.conf --scenario offline"
for v in fp8:plain fp8:lean bf16:plain; do
  p=${v%%:*}; o=""; [ ${v#*:} = lean ] && o="--option residual=fp8 --option fuse_last=1"
  left=$(( 232 - (SECONDS - start) )); echo "== CLI $v offline ($left s left)"
  [ $left -lt 30 ] && break
  (time timeout $left $S run $A --precision $p $o --system h200-$p-${v#*:}) 2>&1 | tail -4
  p=$p-${v#*:}
  cp /tmp/r/h200-$p/dlrm-v2/Offline/performance/run_1/result.json $OUT/cli_$p.json 2>/dev/null
  $PY -c "import json;r=json.load(open('$OUT/cli_$p.json'));x=r['backend'];print('$p', r['performance']['metric'], 'bucket_ms', x.get('bucket_ms'), 'fused', {k: v for k, v in (x.get('fused') or {}).items() if k != 'calibration'})" 2>&1 | tail -2
done
$S summary /tmp/r 2>&1 | tee $OUT/summary.txt
