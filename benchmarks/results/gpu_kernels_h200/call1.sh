#!/usr/bin/env bash
# Device call 1 (one H200): the kernel tests marked cuda, then DLRM-v2 at full scale (26 tables,
# 204 M rows, bf16 built on the GPU): per-matmul table (Triton as tuned, a tile sweep, cuBLAS with
# and without its epilogue kernel), per-kernel profile of one forward, and every fused variant
# timed as a CUDA graph at 16,384 and 32,768 items with its AUC against the model's own labels.
set -u
export PYTHONUNBUFFERED=1 PY=/tmp/v/bin/python
(timeout 60 $PY -m pytest -q -m cuda -p no:cacheprovider tests/test_kernels.py 2>&1 | tail -4) 2>&1 | tee $OUT/cuda_tests.txt
cd benchmarks
timeout 165 $PY gpu.py --sections dlrm-v2 --dlrm-items 65536 --dlrm-batch 16384 --layers --profile --out $OUT \
  --dlrm-variants "dense=fp8;dense=fp8,residual=x0-fp8;dense=fp8,residual=fp8;dense=fp8,residual=fp8,fuse_last=1;dense=fp8,gemm=cublas;dense=fp8,rows=bf16,residual=fp8,fuse_last=1;dense=bf16;dense=bf16,gemm=cublas;dense=bf16,fuse_last=1" \
  2>&1 | grep -v -i warn | tee $OUT/call1.txt
