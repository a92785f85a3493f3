"""Fused GPU kernels (Triton) for the DLRM family, used by torch-cuda's ``--precision fp8`` and
``fused=1``.

* :mod:`suite.backends.kernels.lookup`: every pooled table of a model in one launch, rows stored in bf16,
  fp16, fp8 (e4m3, per-row scale) or int8 (per-row scale and bias), summed in fp32.
* :mod:`suite.backends.kernels.dense`: a matmul whose epilogue does bias, ReLU, DCNv2's ``x0 * y + x``
  and the fp8 quantization of its output, on bf16/fp16 or fp8 operands.
* :mod:`suite.backends.kernels.fused`: :func:`~suite.backends.kernels.fused.fuse` turns a built DLRM or DLRM-v2
  module into one that runs on those kernels.

Importing this package imports nothing heavy; its modules import torch and Triton.
"""
