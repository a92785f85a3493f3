"""Dense layers with their elementwise work in the matmul's epilogue.

:func:`linear` computes ``y = (a @ w.T) * a_scale * w_scale[n] + bias``, then optionally ReLU,
then optionally DCNv2's cross step ``y = x0 * y + xl`` (x0 and xl in the model dtype or as fp8
copies with their scales), and writes ``y`` in the output dtype and, when asked, also
``y / q_scale`` as fp8 e4m3 (saturated at +-448) for the next fp8 matmul, or, for a model's last
hidden layer, the 1-wide output layer's dot product over ``y``'s row. The operands are bf16/fp16,
or fp8 e4m3 with a per-tensor scale for ``a`` (static, calibrated) and a per-output-channel scale
for ``w``. :func:`scaled_mm` is cuBLAS's fp8 GEMM for comparison and for ``gemm=cublas``.

:func:`epilogue` is the same elementwise work as one kernel after a cuBLAS GEMM, for comparison
and for the bf16 path when cuBLAS's GEMM is the faster one.

Size: this module is over 450 lines because the two matmul kernels share one epilogue, and the
tile tables beside them carry why each candidate is there (what the H200 and ptxas measured); a
split would put the tables apart from the kernels whose registers they are sized by.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import triton
import triton.language as tl
from triton.tools.tensor_descriptor import TensorDescriptor

from suite.backends.kernels.lookup import FP8_MAX, interpreted
from suite.backends.kernels.lookup import to_fp8 as _to_fp8


@triton.jit
def _as_x(v, FP8: tl.constexpr, scale):
    """A loaded tile of the cross step's x0 or x_l as fp32: the model dtype, or fp8 bytes times ``scale``."""
    if FP8:
        return v.to(tl.float8e4nv, bitcast=True).to(tl.float32) * scale
    return v.to(tl.float32)


@triton.jit
def _load_x(ptr, offs, ok, FP8: tl.constexpr, scale):
    """A tile of the cross step's x0 or x_l, read and made fp32 (:func:`_as_x`)."""
    return _as_x(tl.load(ptr + offs, mask=ok, other=0), FP8, scale)


@triton.jit
def _prefetch_x(x0_ptr, xl_ptr, rows, rn, ok, stride_x0, stride_xl, SAME_X: tl.constexpr):
    """The cross step's x0 and x_l tiles by plain loads, as loaded (fp8 bytes stay bytes, made fp32
    only in the epilogue by :func:`_as_x`), so no use waits on them before the K loop has run."""
    x0 = tl.load(x0_ptr + rows * stride_x0 + rn[None, :], mask=ok, other=0)
    if SAME_X:
        return x0, x0
    return x0, tl.load(xl_ptr + rows * stride_xl + rn[None, :], mask=ok, other=0)


@triton.jit
def _linear_kernel(a_ptr, w_ptr, bias_ptr, ws_ptr, x0_ptr, xl_ptr, out_ptr, q_ptr, last_w_ptr, last_ptr,
                   M, N, K, stride_am, stride_wn, stride_x0, stride_xl, stride_out, stride_q, a_scale, q_inv,
                   x0_scale, xl_scale, last_bias,
                   HAS_BIAS: tl.constexpr, W_SCALE: tl.constexpr, RELU: tl.constexpr, CROSS: tl.constexpr,
                   WRITE_OUT: tl.constexpr, WRITE_Q: tl.constexpr, FP8: tl.constexpr, UPCAST: tl.constexpr,
                   X0_FP8: tl.constexpr, XL_FP8: tl.constexpr, SAME_X: tl.constexpr, LAST: tl.constexpr,
                   BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr,
                   PREFETCH: tl.constexpr):
    pid = tl.program_id(0)
    grid_m = tl.cdiv(M, BLOCK_M)
    grid_n = tl.cdiv(N, BLOCK_N)
    # Grouped order: GROUP_M row blocks share their weight columns while those are in L2.
    width = GROUP_M * grid_n
    group = pid // width
    first_m = group * GROUP_M
    size_m = min(grid_m - first_m, GROUP_M)
    pid_m = first_m + (pid % width) % size_m
    pid_n = (pid % width) // size_m
    rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    rk = tl.arange(0, BLOCK_K)
    m_ok = rm < M
    n_ok = rn < N
    a_ptrs = a_ptr + rm.to(tl.int64)[:, None] * stride_am + rk[None, :]
    w_ptrs = w_ptr + rn.to(tl.int64)[None, :] * stride_wn + rk[:, None]
    ok = m_ok[:, None] & n_ok[None, :]
    rows = rm.to(tl.int64)[:, None]
    x0 = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)  # unread unless prefetched: the compiler drops it
    xl = x0
    if CROSS and PREFETCH:  # issue the epilogue's reads first, so they travel while the MMAs run
        x0, xl = _prefetch_x(x0_ptr, xl_ptr, rows, rn, ok, stride_x0, stride_xl, SAME_X)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        k_ok = (k0 + rk) < K
        a = tl.load(a_ptrs, mask=m_ok[:, None] & k_ok[None, :], other=0.0)
        w = tl.load(w_ptrs, mask=k_ok[:, None] & n_ok[None, :], other=0.0)
        if FP8:  # read as bytes (a masked load needs a zero of its type), bitcast for free
            a = a.to(tl.float8e4nv, bitcast=True)
            w = w.to(tl.float8e4nv, bitcast=True)
        if UPCAST:  # Triton's CPU interpreter multiplies bf16 wrongly; fp32 there is exact enough (and
            # the interpreter's only meaning of UPCAST: it also rounds the fp8 copy by hand)
            a = a.to(tl.float32)
            w = w.to(tl.float32)
        acc = tl.dot(a, w, acc)
        a_ptrs += BLOCK_K
        w_ptrs += BLOCK_K
    acc = _tile_epilogue(acc, pid_m * BLOCK_M, pid_n * BLOCK_N, rm, rn, bias_ptr, ws_ptr, x0_ptr, xl_ptr, out_ptr, q_ptr,
                         M, N, stride_x0, stride_xl, stride_out, stride_q, a_scale, q_inv, x0_scale, xl_scale,
                         HAS_BIAS, W_SCALE, RELU, CROSS, WRITE_OUT, WRITE_Q, UPCAST, X0_FP8, XL_FP8, SAME_X, False,
                         x0, xl, PREFETCH)
    if LAST:  # a 1-wide layer after this one (the whole N in this tile): its dot product, in fp32
        lw = tl.load(last_w_ptr + rn, mask=n_ok, other=0.0)
        tl.store(last_ptr + rm, tl.sum(acc * lw[None, :], axis=1) + last_bias, mask=m_ok)


@triton.jit
def _tile_epilogue(acc, om, on, rm, rn, bias_ptr, ws_ptr, x0_ptr, xl_ptr, out_ptr, q_ptr, M, N,
                   stride_x0, stride_xl, stride_out, stride_q, a_scale, q_inv, x0_scale, xl_scale,
                   HAS_BIAS: tl.constexpr, W_SCALE: tl.constexpr, RELU: tl.constexpr, CROSS: tl.constexpr,
                   WRITE_OUT: tl.constexpr, WRITE_Q: tl.constexpr, UPCAST: tl.constexpr,
                   X0_FP8: tl.constexpr, XL_FP8: tl.constexpr, SAME_X: tl.constexpr, EPI_TMA: tl.constexpr,
                   x0_pre, xl_pre, PRELOADED: tl.constexpr):
    """Scales, bias, ReLU, the cross step and the stores of one (BLOCK_M, BLOCK_N) accumulator at
    (``om``, ``on``); returns the accumulator as stored. With ``EPI_TMA`` the x0 / x_l / out /
    fp8-copy arguments are tensor descriptors (typed: fp8 operands arrive as fp8) and move by TMA;
    else pointers (fp8 as bytes). With ``PRELOADED`` the cross step uses ``x0_pre`` / ``xl_pre``,
    read by the caller before its K loop, as loaded (``Tiles.prefetch``); the stores still go by TMA
    with ``EPI_TMA``."""
    m_ok = rm < M
    n_ok = rn < N
    ok = m_ok[:, None] & n_ok[None, :]
    rows = rm.to(tl.int64)[:, None]
    acc = acc * a_scale
    if W_SCALE:
        acc = acc * tl.load(ws_ptr + rn, mask=n_ok, other=0.0)[None, :]
    if HAS_BIAS:
        acc = acc + tl.load(bias_ptr + rn, mask=n_ok, other=0.0)[None, :]
    if RELU:
        acc = tl.maximum(acc, 0.0)
    if CROSS and PRELOADED:
        x0 = _as_x(x0_pre, X0_FP8, x0_scale)
        if SAME_X:
            xl = x0
        else:
            xl = _as_x(xl_pre, XL_FP8, xl_scale)
        acc = x0 * acc + xl
    elif CROSS and EPI_TMA:
        x0 = x0_ptr.load([om, on]).to(tl.float32)
        if X0_FP8:
            x0 = x0 * x0_scale
        if SAME_X:
            xl = x0
        else:
            xl = xl_ptr.load([om, on]).to(tl.float32)
            if XL_FP8:
                xl = xl * xl_scale
        acc = x0 * acc + xl
    elif CROSS:
        x0 = _load_x(x0_ptr, rows * stride_x0 + rn[None, :], ok, X0_FP8, x0_scale)
        if SAME_X:
            xl = x0
        else:
            xl = _load_x(xl_ptr, rows * stride_xl + rn[None, :], ok, XL_FP8, xl_scale)
        acc = x0 * acc + xl
    if WRITE_OUT and EPI_TMA:
        out_ptr.store([om, on], acc.to(out_ptr.dtype))
    elif WRITE_OUT:
        tl.store(out_ptr + rows * stride_out + rn[None, :], acc.to(out_ptr.dtype.element_ty), mask=ok)
    if WRITE_Q:
        q = _to_fp8(tl.minimum(tl.maximum(acc * q_inv, -448.0), 448.0), UPCAST)
        if EPI_TMA:
            q_ptr.store([om, on], q)
        else:
            tl.store(q_ptr + rows * stride_q + rn[None, :], q, mask=ok)
    return acc


@triton.jit
def _tma_tile(tile, a_desc, w_desc, bias_ptr, ws_ptr, x0_ptr, xl_ptr, out_ptr, q_ptr, M, N, K,
              stride_x0, stride_xl, stride_out, stride_q, a_scale, q_inv, x0_scale, xl_scale,
              HAS_BIAS: tl.constexpr, W_SCALE: tl.constexpr, RELU: tl.constexpr, CROSS: tl.constexpr,
              WRITE_OUT: tl.constexpr, WRITE_Q: tl.constexpr, UPCAST: tl.constexpr,
              X0_FP8: tl.constexpr, XL_FP8: tl.constexpr, SAME_X: tl.constexpr, EPI_TMA: tl.constexpr,
              BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr,
              PREFETCH: tl.constexpr, SUBTILE: tl.constexpr):
    grid_m = tl.cdiv(M, BLOCK_M)
    grid_n = tl.cdiv(N, BLOCK_N)
    width = GROUP_M * grid_n
    first_m = (tile // width) * GROUP_M
    size_m = tl.minimum(grid_m - first_m, GROUP_M)
    pid_m = first_m + (tile % width) % size_m
    pid_n = (tile % width) // size_m
    rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    x0 = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)  # unread unless prefetched: the compiler drops it
    xl = x0
    if CROSS and PREFETCH:  # as in _linear_kernel: in flight while the MMAs run
        x0, xl = _prefetch_x(x0_ptr, xl_ptr, rm.to(tl.int64)[:, None], rn, (rm < M)[:, None] & (rn < N)[None, :],
                             stride_x0, stride_xl, SAME_X)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        a = a_desc.load([pid_m * BLOCK_M, k0])
        w = w_desc.load([pid_n * BLOCK_N, k0])
        if UPCAST:  # see _linear_kernel
            a = a.to(tl.float32)
            w = w.to(tl.float32)
        acc = tl.dot(a, w.T, acc)
    if SUBTILE:  # the epilogue over two (BLOCK_M, BLOCK_N / 2) halves: half its registers live at once
        HALF: tl.constexpr = BLOCK_N // 2
        a0, a1 = tl.split(tl.permute(tl.reshape(acc, (BLOCK_M, 2, HALF)), (0, 2, 1)))
        if CROSS and PREFETCH:
            p0, p1 = tl.split(tl.permute(tl.reshape(x0, (BLOCK_M, 2, HALF)), (0, 2, 1)))
            l0, l1 = tl.split(tl.permute(tl.reshape(xl, (BLOCK_M, 2, HALF)), (0, 2, 1)))
        else:
            p0, p1, l0, l1 = a0, a1, a0, a1
        rh = pid_n * BLOCK_N + tl.arange(0, HALF)
        _tile_epilogue(a0, pid_m * BLOCK_M, pid_n * BLOCK_N, rm, rh, bias_ptr, ws_ptr, x0_ptr, xl_ptr, out_ptr, q_ptr, M, N,
                       stride_x0, stride_xl, stride_out, stride_q, a_scale, q_inv, x0_scale, xl_scale,
                       HAS_BIAS, W_SCALE, RELU, CROSS, WRITE_OUT, WRITE_Q, UPCAST, X0_FP8, XL_FP8, SAME_X, EPI_TMA,
                       p0, l0, PREFETCH)
        _tile_epilogue(a1, pid_m * BLOCK_M, pid_n * BLOCK_N + HALF, rm, rh + HALF, bias_ptr, ws_ptr, x0_ptr, xl_ptr, out_ptr,
                       q_ptr, M, N, stride_x0, stride_xl, stride_out, stride_q, a_scale, q_inv, x0_scale, xl_scale,
                       HAS_BIAS, W_SCALE, RELU, CROSS, WRITE_OUT, WRITE_Q, UPCAST, X0_FP8, XL_FP8, SAME_X, EPI_TMA,
                       p1, l1, PREFETCH)
    else:
        _tile_epilogue(acc, pid_m * BLOCK_M, pid_n * BLOCK_N, rm, rn, bias_ptr, ws_ptr, x0_ptr, xl_ptr, out_ptr, q_ptr, M, N,
                       stride_x0, stride_xl, stride_out, stride_q, a_scale, q_inv, x0_scale, xl_scale,
                       HAS_BIAS, W_SCALE, RELU, CROSS, WRITE_OUT, WRITE_Q, UPCAST, X0_FP8, XL_FP8, SAME_X, EPI_TMA,
                       x0, xl, PREFETCH)


@triton.jit
def _linear_tma_kernel(a_desc, w_desc, bias_ptr, ws_ptr, x0_ptr, xl_ptr, out_ptr, q_ptr, M, N, K,
                       stride_x0, stride_xl, stride_out, stride_q, a_scale, q_inv, x0_scale, xl_scale,
                       HAS_BIAS: tl.constexpr, W_SCALE: tl.constexpr, RELU: tl.constexpr, CROSS: tl.constexpr,
                       WRITE_OUT: tl.constexpr, WRITE_Q: tl.constexpr, UPCAST: tl.constexpr,
                       X0_FP8: tl.constexpr, XL_FP8: tl.constexpr, SAME_X: tl.constexpr, EPI_TMA: tl.constexpr,
                       BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr,
                       PROGRAMS: tl.constexpr, FLATTEN: tl.constexpr, WARP_SPECIALIZE: tl.constexpr, PREFETCH: tl.constexpr,
                       SUBTILE: tl.constexpr):
    # Persistent: PROGRAMS programs walk the output tiles; operands arrive by TMA (Hopper's tensor
    # memory accelerator), so the loads cost no registers and the next tile's can start early.
    tiles = tl.cdiv(M, BLOCK_M) * tl.cdiv(N, BLOCK_N)
    if WARP_SPECIALIZE:
        for tile in tl.range(tl.program_id(0), tiles, PROGRAMS, warp_specialize=True):
            _tma_tile(tile, a_desc, w_desc, bias_ptr, ws_ptr, x0_ptr, xl_ptr, out_ptr, q_ptr, M, N, K,
                      stride_x0, stride_xl, stride_out, stride_q, a_scale, q_inv, x0_scale, xl_scale,
                      HAS_BIAS, W_SCALE, RELU, CROSS, WRITE_OUT, WRITE_Q, UPCAST, X0_FP8, XL_FP8, SAME_X, EPI_TMA,
                      BLOCK_M, BLOCK_N, BLOCK_K, GROUP_M, PREFETCH, SUBTILE)
    elif FLATTEN:
        for tile in tl.range(tl.program_id(0), tiles, PROGRAMS, flatten=True):
            _tma_tile(tile, a_desc, w_desc, bias_ptr, ws_ptr, x0_ptr, xl_ptr, out_ptr, q_ptr, M, N, K,
                      stride_x0, stride_xl, stride_out, stride_q, a_scale, q_inv, x0_scale, xl_scale,
                      HAS_BIAS, W_SCALE, RELU, CROSS, WRITE_OUT, WRITE_Q, UPCAST, X0_FP8, XL_FP8, SAME_X, EPI_TMA,
                      BLOCK_M, BLOCK_N, BLOCK_K, GROUP_M, PREFETCH, SUBTILE)
    else:
        for tile in tl.range(tl.program_id(0), tiles, PROGRAMS):
            _tma_tile(tile, a_desc, w_desc, bias_ptr, ws_ptr, x0_ptr, xl_ptr, out_ptr, q_ptr, M, N, K,
                      stride_x0, stride_xl, stride_out, stride_q, a_scale, q_inv, x0_scale, xl_scale,
                      HAS_BIAS, W_SCALE, RELU, CROSS, WRITE_OUT, WRITE_Q, UPCAST, X0_FP8, XL_FP8, SAME_X, EPI_TMA,
                      BLOCK_M, BLOCK_N, BLOCK_K, GROUP_M, PREFETCH, SUBTILE)


@triton.jit
def _epilogue_kernel(y_ptr, bias_ptr, x0_ptr, xl_ptr, out_ptr, q_ptr, M, N, q_inv,
                     stride_y, stride_x0, stride_xl, stride_out, stride_q, x0_scale, xl_scale,
                     HAS_BIAS: tl.constexpr, RELU: tl.constexpr, CROSS: tl.constexpr, WRITE_OUT: tl.constexpr,
                     WRITE_Q: tl.constexpr, ROUND: tl.constexpr, X0_FP8: tl.constexpr, XL_FP8: tl.constexpr,
                     BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    rm = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    ok = (rm < M)[:, None] & (rn < N)[None, :]
    rows = rm.to(tl.int64)[:, None]
    y = tl.load(y_ptr + rows * stride_y + rn[None, :], mask=ok, other=0.0).to(tl.float32)
    if HAS_BIAS:
        y = y + tl.load(bias_ptr + rn, mask=rn < N, other=0.0)[None, :]
    if RELU:
        y = tl.maximum(y, 0.0)
    if CROSS:
        x0 = _load_x(x0_ptr, rows * stride_x0 + rn[None, :], ok, X0_FP8, x0_scale)
        y = x0 * y + _load_x(xl_ptr, rows * stride_xl + rn[None, :], ok, XL_FP8, xl_scale)
    if WRITE_OUT:
        tl.store(out_ptr + rows * stride_out + rn[None, :], y.to(out_ptr.dtype.element_ty), mask=ok)
    if WRITE_Q:
        q = tl.minimum(tl.maximum(y * q_inv, -448.0), 448.0)
        tl.store(q_ptr + rows * stride_q + rn[None, :], _to_fp8(q, ROUND), mask=ok)


@dataclass(frozen=True)
class Tiles:
    """A matmul tile configuration."""

    block_m: int = 128
    block_n: int = 128
    block_k: int = 64
    group_m: int = 8
    num_warps: int = 8
    num_stages: int = 3
    #: Load the cross step's x0 and x_l tiles by plain loads before the K loop instead of after it,
    #: so their DRAM latency passes under the MMAs (both kernels; the persistent one still stores by
    #: TMA with ``tma_epilogue``).
    prefetch: bool = False
    #: Programs per SM of the persistent TMA kernel (``_linear_tma_kernel``); 0: the pointer kernel.
    persistent: int = 0
    #: With ``persistent``: flatten the tile and K loops into one pipelined loop, or warp-specialize it.
    flatten: bool = False
    warp_specialize: bool = False
    #: With ``persistent``: the epilogue's x0 / x_l reads and its stores by TMA too.
    tma_epilogue: bool = False
    #: With ``persistent``: the epilogue in two halves of ``block_n``, so that half of its fp32
    #: operands are live at once (a 128x128 fp8 cross step spills at four warps otherwise).
    subtile: bool = False


#: Tiles by operand type, chosen for Hopper (fp8 reads twice the K per byte).
TILES = {"bf16": Tiles(), "fp8": Tiles(block_k=128, num_stages=4)}
#: What :func:`tune` tries, by operand type.
CANDIDATES = {
    "bf16": (Tiles(), Tiles(block_n=256, num_stages=3), Tiles(num_warps=4, num_stages=4), Tiles(block_m=64, block_n=256, num_warps=4, num_stages=4),
             Tiles(num_stages=2), Tiles(block_n=256, num_stages=2), Tiles(block_m=256, num_stages=2)),
    "fp8": (Tiles(block_k=128, num_stages=4), Tiles(block_n=256, block_k=128, num_stages=3),
            Tiles(block_k=128, num_warps=4, num_stages=4), Tiles(block_m=64, block_n=256, block_k=128, num_warps=4, num_stages=4),
            # Two stages leave shared memory for two or three blocks per SM, so one block's epilogue
            # traffic overlaps another's MMAs (K is 512 in half of DLRM-v2's matmuls: 4 steps).
            Tiles(block_k=128, num_stages=2), Tiles(block_n=256, block_k=128, num_stages=2),
            Tiles(block_m=256, block_k=128, num_stages=2), Tiles(block_m=64, block_k=128, num_warps=4, num_stages=2)),
}
#: The persistent TMA kernel's candidates, tried besides :data:`CANDIDATES` by :func:`tune`.
PERSISTENT_CANDIDATES = {
    "bf16": (Tiles(num_stages=3, persistent=1), Tiles(num_stages=3, persistent=1, flatten=True),
             Tiles(block_n=256, num_stages=3, persistent=1, flatten=True), Tiles(num_warps=4, num_stages=3, persistent=2, flatten=True),
             Tiles(num_stages=3, persistent=1, warp_specialize=True), Tiles(num_stages=3, persistent=1, flatten=True, tma_epilogue=True)),
    "fp8": (Tiles(block_k=128, num_stages=3, persistent=1), Tiles(block_k=128, num_stages=3, persistent=1, flatten=True),
            Tiles(block_k=128, num_stages=4, persistent=1, flatten=True), Tiles(block_n=256, block_k=128, num_stages=3, persistent=1, flatten=True),
            Tiles(block_k=128, num_warps=4, num_stages=3, persistent=2, flatten=True),
            Tiles(block_k=128, num_warps=4, num_stages=3, persistent=2),
            Tiles(block_k=128, num_stages=3, persistent=1, warp_specialize=True),
            Tiles(block_k=128, num_warps=4, num_stages=3, persistent=2, tma_epilogue=True),
            Tiles(block_k=128, num_stages=3, persistent=1, flatten=True, tma_epilogue=True),
            Tiles(block_n=256, block_k=128, num_stages=3, persistent=1, flatten=True, tma_epilogue=True)),
}
#: Tried besides :data:`CANDIDATES` where the epilogue has the cross step (see ``Tiles.prefetch``).
CROSS_CANDIDATES = {
    "bf16": (Tiles(prefetch=True), Tiles(block_m=64, block_n=128, num_warps=4, num_stages=3, prefetch=True),
             Tiles(num_stages=3, persistent=1, flatten=True, tma_epilogue=True, subtile=True),
             Tiles(num_warps=4, num_stages=3, persistent=2, tma_epilogue=True, subtile=True)),
    "fp8": (Tiles(block_k=128, num_stages=3, prefetch=True), Tiles(block_m=64, block_n=128, block_k=128, num_warps=4, num_stages=3, prefetch=True),
            Tiles(block_k=128, num_stages=2, prefetch=True), Tiles(block_n=64, block_k=128, num_warps=4, num_stages=2, prefetch=True),
            # The persistent kernel with its epilogue in two halves of the tile: registers and shared
            # memory from ptxas for sm_90 (Triton 3.6) decide the programs an SM (128x128 at four
            # warps spills 56 B whole and needs 216 registers in halves; 64x128 in halves needs 125
            # and 53 KB, so four fit an SM). Timed alone on the H200 at 16,384 items, the first two
            # came within 1% of the default (0.0861 and 0.0951 ms for layer 0, 0.1167 and 0.1092 for
            # layer 1, against 0.0851 and 0.1093); shapes reading x0 and x_l before the K loop took
            # 0.107-0.121 and 0.123-0.142 and are not kept (benchmarks/results/gpu_server_h200_s16/c3).
            # The flattened two are not yet timed on a GPU.
            Tiles(block_k=128, num_warps=4, num_stages=3, persistent=2, tma_epilogue=True, subtile=True),
            Tiles(block_m=64, block_k=128, num_warps=4, num_stages=2, persistent=4, tma_epilogue=True, subtile=True),
            Tiles(block_k=128, num_warps=4, num_stages=3, persistent=2, flatten=True, tma_epilogue=True, subtile=True),
            Tiles(block_k=128, num_warps=8, num_stages=3, persistent=2, flatten=True, tma_epilogue=True, subtile=True)),
}
#: Tiles :func:`tune` found fastest, by (operand type, N, K); :data:`TILES` where a shape has none.
#: Filled with what the layer sweep of ``benchmarks/gpu.py --sections dlrm-v2 --layers`` picked for
#: DLRM-v2's matmuls at 16,384 items on an H200 (``benchmarks/results/final_h200_s4/gpu.txt``): the
#: persistent TMA kernel won every shape but the last (1-wide layer folded in), e.g. fp8 512x3456
#: 0.042 ms against 0.068 for the pointer kernel and 0.044 for cuBLAS's GEMM alone, and the cross
#: layers' 3456x512 up-projection with its epilogue by TMA 0.110 against 0.199 (pointer kernel) and
#: 0.144 (cuBLAS + its epilogue kernel). ``tune=1`` at load replaces them with what the device at
#: hand picks.
_TMA1F = {"num_warps": 8, "num_stages": 3, "persistent": 1, "flatten": True}
_TMA2 = {"num_warps": 4, "num_stages": 3, "persistent": 2}
TUNED: dict[tuple[str, int, int], Tiles] = {
    ("fp8", 512, 3456): Tiles(block_n=256, block_k=128, **_TMA1F),
    ("fp8", 3456, 512): Tiles(block_k=128, tma_epilogue=True, **_TMA2),
    ("fp8", 1024, 3456): Tiles(block_n=256, block_k=128, tma_epilogue=True, **_TMA1F),
    ("fp8", 1024, 1024): Tiles(block_n=256, block_k=128, tma_epilogue=True, **_TMA1F),
    ("fp8", 512, 1024): Tiles(block_k=128, tma_epilogue=True, **_TMA2),
    ("fp8", 256, 512): Tiles(block_k=128, num_warps=8, num_stages=4),
    ("bf16", 512, 3456): Tiles(block_n=256, **_TMA1F),
    ("bf16", 3456, 512): Tiles(tma_epilogue=True, **_TMA1F),
    ("bf16", 1024, 3456): Tiles(block_n=256, **_TMA1F),
    ("bf16", 1024, 1024): Tiles(block_n=256, **_TMA1F),
    ("bf16", 512, 1024): Tiles(block_n=256, **_TMA1F),
    ("bf16", 256, 512): Tiles(block_n=256, **_TMA1F),
}


def tiles_text(t: Tiles) -> str:
    """A tile shape in one word, as results record it: ``MxNxK wW sS`` (``p`` when prefetching,
    ``tmaP`` for the persistent TMA kernel with P programs an SM, ``f`` flattened, ``ws``
    warp-specialized, ``e`` its epilogue by TMA too, ``h`` in halves)."""
    text = f"{t.block_m}x{t.block_n}x{t.block_k} w{t.num_warps} s{t.num_stages}" + (" p" if t.prefetch else "")
    if t.persistent:
        text += f" tma{t.persistent}" + (" f" if t.flatten else "") + (" ws" if t.warp_specialize else "") + (" e" if t.tma_epilogue else "") + (" h" if t.subtile else "")
    return text


def tiles_for(fp8: bool, n: int, k: int) -> Tiles:
    """The tiles :func:`linear` uses for an (N, K) weight."""
    kind = "fp8" if fp8 else "bf16"
    return TUNED.get((kind, n, k), TILES[kind])


def graph_ms(fn: Callable[[], Any], calls: int = 10, replays: int = 3) -> float:
    """GPU milliseconds of one ``fn()``, from ``calls`` calls captured in one CUDA graph and
    replayed: no Python launch cost in the figure, as in the backend's graphed forward (a Triton
    launch costs the host tens of microseconds, which eager timing of a short kernel measures
    instead of the kernel). CUDA only."""
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        fn()
        fn()
    stream.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, stream=stream):
        for _ in range(calls):
            fn()
    graph.replay()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(replays):
        graph.replay()
    end.record()
    end.synchronize()
    del graph
    return start.elapsed_time(end) / (calls * replays)


#: How far a tile shape's outputs may be from the default pointer tiles' in :func:`tune`, relative
#: to the largest: the shapes sum the same fp32 products in other orders, then round to bf16 (or,
#: for the fp8 copy, to e4m3, whose step is an eighth of a value: allowed on top). A shape that
#: drops or garbles tiles is far past it.
TUNE_TOLERANCE = 1e-2


def outputs_agree(got: tuple[torch.Tensor | None, ...], want: tuple[torch.Tensor | None, ...]) -> bool:
    """Whether :func:`linear`'s outputs from one tile shape are those of another: the same outputs
    present, each within :data:`TUNE_TOLERANCE` of the largest reference value (fp8 copies also
    within one e4m3 step of each value)."""
    for g, r in zip(got, want, strict=True):
        if (g is None) != (r is None):
            return False
        if g is None or r is None:
            continue
        step = r.float().abs() / 8 if r.dtype == torch.float8_e4m3fn else 0.0
        gf, rf = g.float(), r.float()
        bound = TUNE_TOLERANCE * float(rf.abs().max()) + step
        if gf.shape != rf.shape or not bool(((gf - rf).abs() <= bound).all()):
            return False
    return True


def tune(m: int, n: int, k: int, *, fp8: bool, calls: int = 10, candidates: tuple[Tiles, ...] | None = None,
         **epilogue: Any) -> list[tuple[Tiles, float]]:
    """Time every candidate tile shape (``candidates``, else :data:`CANDIDATES` and, with a cross
    step, :data:`CROSS_CANDIDATES`) on an (m, k) x (n, k) product with ``epilogue`` (the keywords
    of :func:`linear` besides the operands) by :func:`graph_ms`, keep the fastest in :data:`TUNED`,
    and return (tiles, ms) for each that compiled and computed what the default pointer tiles do
    (:func:`outputs_agree`); any other is skipped. CUDA only."""
    device = torch.device("cuda")
    a = torch.randn(m, k, device=device).to(torch.float8_e4m3fn if fp8 else torch.bfloat16)
    w = torch.randn(n, k, device=device).to(a.dtype)
    scale = torch.ones(n, device=device) if fp8 else None
    timings = []
    kind = "fp8" if fp8 else "bf16"
    if candidates is None:
        candidates = CANDIDATES[kind] + (CROSS_CANDIDATES[kind] if epilogue.get("x0") is not None else ())
        if epilogue.get("last") is None:
            candidates += PERSISTENT_CANDIDATES[kind]
    want = linear(a, w, w_scale=scale, tiles=TILES[kind], **epilogue)
    for tiles in candidates:
        def call(tiles: Tiles = tiles) -> None:
            linear(a, w, w_scale=scale, tiles=tiles, **epilogue)
        try:
            if not outputs_agree(linear(a, w, w_scale=scale, tiles=tiles, **epilogue), want):
                continue
            timings.append((tiles, graph_ms(call, calls)))
        except Exception:
            torch.cuda.synchronize()
            continue
    if timings:
        TUNED[(kind, n, k)] = min(timings, key=lambda x: x[1])[0]
    return timings


def quantize(x: torch.Tensor, scale: float) -> torch.Tensor:
    """``x / scale`` as fp8 e4m3, saturated (a per-tensor static scale)."""
    return (x.float() / scale).clamp(-FP8_MAX, FP8_MAX).to(torch.float8_e4m3fn)


def quantize_weight(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(out, in) weights as fp8 e4m3 with one fp32 scale per output channel (max|row| / 448)."""
    scale = (w.float().abs().amax(dim=1) / FP8_MAX).clamp_min(1e-30)
    return (w.float() / scale[:, None]).to(torch.float8_e4m3fn).contiguous(), scale.contiguous()


def _x_operand(x: torch.Tensor | None, scale: float | None) -> tuple[torch.Tensor | None, bool, float]:
    """A cross-step operand as the kernels take it: fp8 as bytes, with its scale."""
    if x is None:
        return None, False, 1.0
    if x.stride(1) != 1:
        raise ValueError("the cross step needs x0 and xl with unit column stride")
    if x.dtype == torch.float8_e4m3fn:
        if scale is None:
            raise ValueError("an fp8 cross-step operand needs its scale")
        return x.view(torch.uint8), True, float(scale)
    return x, False, 1.0


def _sm_count(device: torch.device) -> int:
    """Streaming multiprocessors of ``device`` (4 under the interpreter: a few programs to walk the tiles)."""
    if device.type != "cuda":
        return 4
    return int(torch.cuda.get_device_properties(device).multi_processor_count)


def _tma_ready(*tensors: torch.Tensor) -> bool:
    """Whether TMA can move these 2-D tensors: 16-byte aligned bases and row strides (Hopper's
    rule), and on a GPU, one of compute capability 9 or above."""
    if tensors[0].device.type == "cuda" and torch.cuda.get_device_capability(tensors[0].device)[0] < 9:
        return False
    return all(x.data_ptr() % 16 == 0 and (x.stride(0) * x.element_size()) % 16 == 0 for x in tensors)


def linear(a: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None = None, *, relu: bool = False,
           a_scale: float = 1.0, w_scale: torch.Tensor | None = None, x0: torch.Tensor | None = None,
           xl: torch.Tensor | None = None, x0_scale: float | None = None, xl_scale: float | None = None,
           out_dtype: torch.dtype | None = torch.bfloat16, q_scale: float | None = None, tiles: Tiles | None = None,
           out: torch.Tensor | None = None, q_out: torch.Tensor | None = None,
           last: tuple[torch.Tensor, float] | None = None) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """One Triton matmul with its epilogue: returns (out in ``out_dtype`` or None, fp8 copy or None).

    ``a`` (M, K) and ``w`` (N, K), both with unit stride along K; ``bias`` and ``w_scale`` (N,)
    fp32; ``x0`` and ``xl`` (M, N) for the cross step, in the model dtype or fp8 (then with
    ``x0_scale`` / ``xl_scale``; ``xl`` may be ``x0`` itself, read once); ``q_scale`` asks for the
    fp8 copy. ``out`` / ``q_out`` are (M, N) views (unit column stride) to write into instead of
    new tensors. ``last`` = (weight (N,) fp32, bias) adds a 1-wide layer after this one: with it
    the call returns (its (M,) fp32 output, fp8 copy or None) and needs ``tiles.block_n >= N``.
    """
    m, k = a.shape
    n = w.shape[0]
    if w.shape[1] != k or a.stride(1) != 1 or w.stride(1) != 1:
        raise ValueError(f"a (M, K) and w (N, K) need unit stride along K (got {tuple(a.shape)}, {tuple(w.shape)})")
    fp8 = a.dtype == torch.float8_e4m3fn
    t = tiles or tiles_for(fp8, n, k)
    if last is not None:
        if t.block_n < n:  # the whole row in one tile; at most 32K fp32 accumulators a program
            wide = triton.next_power_of_2(n)
            t = dataclasses.replace(t, block_n=wide, block_m=min(t.block_m, max(16, 32768 // wide)))
        out_dtype = None
    if out is None and out_dtype is not None:
        out = torch.empty((m, n), dtype=out_dtype, device=a.device)
    if q_out is None and q_scale is not None:
        q_out = torch.empty((m, n), dtype=torch.float8_e4m3fn, device=a.device)
    for o in (out, q_out):
        if o is not None and (o.shape[0] < m or o.shape[1] != n or o.stride(1) != 1):
            raise ValueError(f"an output view must be ({m}, {n}) with unit column stride (got {tuple(o.shape)})")
    cross = x0 is not None
    if cross and xl is None:
        raise ValueError("the cross step needs both x0 and xl")
    same = cross and xl is x0
    x0v, x0_fp8, x0s = _x_operand(x0, x0_scale)
    xlv, xl_fp8, xls = _x_operand(xl, xl_scale)
    last_out = torch.empty(m, dtype=torch.float32, device=a.device) if last is not None else None
    dummy = next(x for x in (out, q_out, last_out) if x is not None)
    if t.persistent and last is None and _tma_ready(a, w):
        tiles_mn = triton.cdiv(m, t.block_m) * triton.cdiv(n, t.block_n)
        programs = min(tiles_mn, t.persistent * _sm_count(a.device))
        prefetch = t.prefetch and cross  # x0 and x_l by plain loads before the K loop, the stores as asked
        epi_ops = [x for x in (x0 if cross and not prefetch else None, xl if cross and not same and not prefetch else None,
                               out, q_out) if x is not None]
        epi_tma = t.tma_epilogue and _tma_ready(*epi_ops)
        block = [t.block_m, t.block_n // 2 if t.subtile else t.block_n]

        def epi(x: torch.Tensor | None, pointer: torch.Tensor | None, tma: bool = True) -> Any:
            if x is None:
                return dummy
            return TensorDescriptor(x, [m, n], [x.stride(0), 1], block) if epi_tma and tma else pointer
        _linear_tma_kernel[(programs,)](
            TensorDescriptor.from_tensor(a, [t.block_m, t.block_k]), TensorDescriptor.from_tensor(w, [t.block_n, t.block_k]),
            bias if bias is not None else dummy, w_scale if w_scale is not None else dummy,
            epi(x0 if cross else None, x0v, not prefetch), epi(xl if cross and not same else None, xlv, not prefetch),
            epi(out, out), epi(q_out, q_out), m, n, k,
            x0v.stride(0) if cross else 0, xlv.stride(0) if cross else 0,
            out.stride(0) if out is not None else 0, q_out.stride(0) if q_out is not None else 0,
            float(a_scale), 1.0 / q_scale if q_scale is not None else 1.0, x0s, xls,
            HAS_BIAS=bias is not None, W_SCALE=w_scale is not None, RELU=relu, CROSS=cross,
            WRITE_OUT=out is not None, WRITE_Q=q_out is not None, UPCAST=interpreted(),
            X0_FP8=x0_fp8, XL_FP8=xl_fp8, SAME_X=same, EPI_TMA=epi_tma,
            BLOCK_M=t.block_m, BLOCK_N=t.block_n, BLOCK_K=t.block_k, GROUP_M=t.group_m,
            PROGRAMS=programs, FLATTEN=t.flatten, WARP_SPECIALIZE=t.warp_specialize, PREFETCH=prefetch,
            SUBTILE=t.subtile, num_warps=t.num_warps, num_stages=t.num_stages,
        )
        return out, q_out
    grid = (triton.cdiv(m, t.block_m) * triton.cdiv(n, t.block_n),)
    if fp8:
        a, w = a.view(torch.uint8), w.view(torch.uint8)
    _linear_kernel[grid](
        a, w, bias if bias is not None else dummy, w_scale if w_scale is not None else dummy,
        x0v if cross else dummy, xlv if cross else dummy, out if out is not None else dummy,
        q_out if q_out is not None else dummy, last[0] if last is not None else dummy, last_out if last_out is not None else dummy,
        m, n, k, a.stride(0), w.stride(0), x0v.stride(0) if cross else 0, xlv.stride(0) if cross else 0,
        out.stride(0) if out is not None else 0, q_out.stride(0) if q_out is not None else 0,
        float(a_scale), 1.0 / q_scale if q_scale is not None else 1.0, x0s, xls, float(last[1]) if last is not None else 0.0,
        HAS_BIAS=bias is not None, W_SCALE=w_scale is not None, RELU=relu, CROSS=cross,
        WRITE_OUT=out is not None, WRITE_Q=q_out is not None, FP8=fp8, UPCAST=interpreted(),
        X0_FP8=x0_fp8, XL_FP8=xl_fp8, SAME_X=same, LAST=last is not None,
        BLOCK_M=t.block_m, BLOCK_N=t.block_n, BLOCK_K=t.block_k, GROUP_M=t.group_m, PREFETCH=t.prefetch,
        num_warps=t.num_warps, num_stages=t.num_stages,
    )
    if last_out is not None:
        return last_out, q_out
    return out, q_out


def epilogue(y: torch.Tensor, bias: torch.Tensor | None = None, *, relu: bool = False, x0: torch.Tensor | None = None,
             xl: torch.Tensor | None = None, x0_scale: float | None = None, xl_scale: float | None = None,
             q_scale: float | None = None, write_out: bool = True, q_out: torch.Tensor | None = None,
             out: torch.Tensor | None = None) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Bias, ReLU, the cross step and the fp8 copy as one elementwise kernel over a GEMM's ``y``
    (all (M, N), unit column stride; ``x0``/``xl`` in the model dtype or fp8 with their scales):
    returns (out or None, fp8 copy or None). With no other work it is the quantizer of ``y``;
    ``out`` / ``q_out`` are views to write into instead of new tensors."""
    m, n = y.shape
    if y.stride(1) != 1:
        raise ValueError("y must have unit column stride")
    if out is None and write_out:
        out = torch.empty((m, n), dtype=y.dtype, device=y.device)
    if q_out is None and q_scale is not None:
        q_out = torch.empty((m, n), dtype=torch.float8_e4m3fn, device=y.device)
    cross = x0 is not None
    x0v, x0_fp8, x0s = _x_operand(x0, x0_scale)
    xlv, xl_fp8, xls = _x_operand(xl, xl_scale)
    grid = (triton.cdiv(m, 32), triton.cdiv(n, 128))
    _epilogue_kernel[grid](y, bias if bias is not None else y, x0v if cross else y, xlv if cross else y,
                           out if out is not None else y, q_out if q_out is not None else y, m, n,
                           1.0 / q_scale if q_scale is not None else 1.0,
                           y.stride(0), x0v.stride(0) if cross else 0, xlv.stride(0) if cross else 0,
                           out.stride(0) if out is not None else 0, q_out.stride(0) if q_out is not None else 0, x0s, xls,
                           HAS_BIAS=bias is not None, RELU=relu,
                           CROSS=cross, WRITE_OUT=out is not None, WRITE_Q=q_out is not None, ROUND=interpreted(),
                           X0_FP8=x0_fp8, XL_FP8=xl_fp8, BLOCK_M=32, BLOCK_N=128, num_warps=4)
    return out, q_out


def scaled_mm(a: torch.Tensor, w: torch.Tensor, a_scale: float, w_scale: torch.Tensor,
              bias: torch.Tensor | None = None) -> torch.Tensor:
    """cuBLAS's fp8 GEMM (``torch._scaled_mm``, row-wise scales: Hopper) of ``a`` (M, K) fp8 by
    ``w`` (N, K) fp8, times ``a_scale`` and ``w_scale[n]``, plus ``bias`` (bf16), in bf16."""
    m = a.shape[0]
    sa = torch.full((m, 1), float(a_scale), dtype=torch.float32, device=a.device)
    return torch._scaled_mm(a, w.t(), scale_a=sa, scale_b=w_scale.view(1, -1), bias=bias, out_dtype=torch.bfloat16,
                            use_fast_accum=True)


def cross_reference(x0: torch.Tensor, xl: torch.Tensor, down: torch.Tensor, up: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """One low-rank DCNv2 step as the eager model computes it: ``x0 * (up (down xl) + bias) + xl``."""
    return x0 * torch.nn.functional.linear(torch.nn.functional.linear(xl, down), up, bias) + xl
