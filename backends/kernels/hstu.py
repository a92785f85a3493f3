"""HSTU's SiLU attention as one Triton kernel over jagged requests, without the (L, L) scores.

:func:`hstu_attention` computes what :func:`suite.models.dlrm_v3.jagged_attention` does,
``(silu(alpha q k^T) / scale * mask) v`` per request and head, straight on the packed tokens of a
batch (no padding): request b's tokens are rows ``offsets[b]:offsets[b + 1]``. The mask is made
from each request's history length inside the kernel (token ids: user 0, history 1..h, every
candidate h + 1; a row sees smaller ids and itself; the user row sees the whole history). Each
program owns ``block_m`` query rows of one (request, head) and walks only the key blocks its rows
may see: first the columns every row of the block sees (no mask at all: the bulk of the work),
then the history's masked tail (the causal diagonal, or the user row's), and for candidate rows
their own keys, the diagonal of one masked tile on the tensor cores (until 2026-12-03 one dot
product per row in fp32 on the CUDA cores, which every program paid for, history rows too, with
spilled registers). Without a softmax there is no running
maximum to keep, so the blocks simply add up, and the constant ``1 / scale`` is applied once at
the end.

Candidate rows alone: the last STU layer of dlrm-v3 needs only those (the head reads nothing
else), so the kernel can take q for the candidate rows alone (``q_offsets``: each request's
candidates in the packed q) and return only their outputs, against every key.

:data:`TILE` is the tile shape it launches with; :func:`tune` times :data:`CANDIDATES` on
MLPerf-size jagged requests and keeps the fastest (torch-cuda ``--option tune=1``).
``fp8=True`` runs both products in fp8 e4m3 (the H200's fp8 rate is twice its bf16): q and k
quantized with a scale per token and head, v with a scale per head and channel (each from the
largest magnitude it covers, computed on the device: no host sync, so CUDA graphs hold), and each
tile's SiLU output rounded to fp8 before its product with v; the sums stay fp32. Per-token scales
fold into the scores (row times column), per-channel ones into the output's columns; v is laid
out channels by tokens, as Hopper's 8-bit products want their second operand, each request's
first token at a 16-byte boundary so the unmasked bulk reads v through a tensor descriptor as it
reads k, and fp8 launches with its own shape (:data:`FP8_TILE`). Under Triton's interpreter the fp8 tiles are widened to fp32 before each product
(exact: every fp8 value is one) and the SiLU output is rounded to e4m3's grid in fp32 first, as the
GPU's conversion rounds.

:func:`fused_norm_to` and :func:`fused_gate` do a layer's row-wise work around its matmuls in one
pass each (memory traffic: at MLPerf's size that work moved more bytes than the matmuls);
:func:`fused_residual_out` adds the residual inside the output projection's cuBLAS call, and
:func:`fused_rows_sum` builds the tokens from their table rows in one pass.
:func:`use_fused_attention` swaps them all into a built dlrm-v3 (torch-cuda, ``--option fused=1``).

Size: this module is over 450 lines because the attention kernel, its launch shapes and their
tuning, its fp8 form and the row kernels around it are one unit: each changes with the others.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import triton
import triton.language as tl

from suite.backends.kernels.lookup import FP8_MAX, interpreted
from suite.backends.kernels.lookup import to_fp8 as _to_fp8
from suite.errors import one_of


@dataclass(frozen=True)
class Tile:
    """The attention kernel's launch shape: query rows and key columns per step, warps, stages."""

    block_m: int = 64
    block_n: int = 64
    num_warps: int = 4
    num_stages: int = 3
    #: SiLU through the hardware tanh (CUDA only; the interpreter always takes exp2).
    fast: bool = True
    #: Launch order: every row block of one (request, head) before the next pair's (``rows``), or
    #: every pair's first row block before any pair's second. Programs running at
    #: once read the keys and values of the pairs they belong to: rows-first keeps those to one or
    #: two pairs (4.5 MB each at MLPerf's size, inside a 50 MB L2), pairs-first spreads them over
    #: every pair of the batch (144 MB for 8 requests).
    rows_first: bool = False
    #: Keys and values read through tensor descriptors (the Hopper TMA unit copies each block into
    #: shared memory; no per-element addresses in registers), and so are the block of q and the
    #: output (rows past the request read as zeros and are not written). Launched only where every
    #: stride and the tensors' addresses are multiples of 16 bytes (else plain loads).
    tma: bool = False
    #: The most registers a thread may hold (``maxnreg``; 0: the compiler's choice), so that more
    #: programs share a multiprocessor: four of 64 x 32, two stages, fit one at 128.
    max_registers: int = 0

    def text(self) -> str:
        """One word, as results record it: ``MxN wW sS`` (``exp`` without the hardware tanh,
        ``rows`` launched rows-first, ``tma`` through tensor descriptors)."""
        return (f"{self.block_m}x{self.block_n} w{self.num_warps} s{self.num_stages}" + ("" if self.fast else " exp")
                + (" rows" if self.rows_first else "") + (" tma" if self.tma else "")
                + (f" r{self.max_registers}" if self.max_registers else ""))


#: The launch shape for requests longer than :data:`SMALL` tokens: the fastest :func:`tune` found on
#: an H200 (Triton 3.6), eight MLPerf-size requests (history mean 6,489, 2,048 candidates), 4 heads
#: of 128, bf16: 64x64 w4 s3 rows tma 1.148 ms (492 TFLOP/s on the FLOPs the mask keeps), the same
#: with plain loads 1.265, pairs-first 1.399; the next shapes 1.238-1.461 (every shape:
#: docs/dlrm-v3.md, "Faster kernels"). Through LoadGen, dlrm-v3 Offline 794.8 requests/s with it
#: against 749.7 with plain loads (benchmarks/results/gpu_server_h200_s13/c3). The kernel before
#: (64 x 64, default warps and stages, every block masked, exp SiLU): 2.348 ms. With q, the masked
#: tail, the own keys and the output through descriptors: 1.098 ms (514 TFLOP/s), still the fastest
#: of 25 shapes; 64x32 three stages (three programs a multiprocessor) 1.113 (gpu_server_h200_s21/c1).
TILE = Tile(rows_first=True, tma=True)
#: fp8's launch shape (``fp8=True``): four warps on 64 x 32 tiles, the fastest fp8 shape timed on the
#: H200 (8 MLPerf-size requests, quantizing included: 3.489 ms, against 4.276 with 64 x 64 and four
#: warps, 4.927 with eight, 5.384 with 64 x 128; bf16's kernel 1.173 ms; benchmarks/results/
#: gpu_server_h200_s17/c2). ptxas's spills did not predict it: 2,036 bytes a thread for this shape,
#: 544 for 64 x 64 with eight warps.
FP8_TILE = Tile(64, 32, 4, 3, rows_first=True, tma=True)
#: What ``benchmarks/hstu_gpu.py --fp8`` times besides FP8_TILE and the bf16 pick.
FP8_CANDIDATES = (Tile(64, 64, 8, 3, rows_first=True, tma=True), Tile(64, 128, 8, 2, rows_first=True, tma=True))
#: How far a tile shape's output may be from the plain-load launch's in :func:`tune`, relative to
#: the largest output: the shapes sum the same products in other orders in fp32, and SiLU through
#: exp2 rounds apart from the hardware tanh (at most 0.2% of the largest output on MLPerf-size
#: requests); a launch that drops or garbles blocks of keys is past this.
TUNE_TOLERANCE = 1e-2
#: Requests of at most this many tokens (the test shapes) get 16 x 16 tiles.
SMALL = 64
#: What :func:`tune` times.
CANDIDATES: tuple[Tile, ...] = (
    Tile(64, 64, 4, 2), Tile(64, 64, 4, 3), Tile(64, 128, 4, 2), Tile(64, 128, 8, 3), Tile(64, 32, 4, 4),
    Tile(128, 64, 8, 2), Tile(128, 64, 8, 3), Tile(128, 64, 4, 3), Tile(128, 32, 4, 3), Tile(128, 32, 8, 4),
    Tile(128, 128, 8, 2), Tile(128, 128, 8, 3), Tile(64, 64, 4, 3, fast=False), Tile(128, 64, 8, 2, fast=False),
    Tile(64, 64, 4, 3, rows_first=True), Tile(64, 32, 4, 4, rows_first=True), Tile(128, 64, 8, 3, rows_first=True),
    Tile(128, 128, 8, 3, rows_first=True),
    Tile(64, 64, 4, 3, rows_first=True, tma=True), Tile(128, 64, 8, 3, rows_first=True, tma=True),
    Tile(128, 128, 8, 3, rows_first=True, tma=True),
    # Smaller shapes, more of them a multiprocessor (since the masked tail and the epilogue went
    # through descriptors: 64 x 64 three stages 116 KB of shared memory and 172 registers, two a
    # multiprocessor; 64 x 32 three stages 67 KB and 132, three; two stages at 128, four).
    Tile(64, 32, 4, 3, rows_first=True, tma=True), Tile(64, 32, 4, 4, rows_first=True, tma=True),
    Tile(64, 32, 4, 2, rows_first=True, tma=True, max_registers=128), Tile(64, 64, 4, 2, rows_first=True, tma=True),
    # Not kept: eight warps on 64-row tiles. ptxas spills 160 and 464 bytes a thread with them for
    # 64 x 64 and 64 x 128, against 1,060 with TILE's four warps, but on the H200 they took 2.212 and
    # 2.068 ms against TILE's 1.173 (benchmarks/results/gpu_server_h200_s17/c2). Nor SiLU in packed
    # fp16 (tanh.approx.f16x2 and one fma.rn.f16x2 for two elements, the product with v in fp16):
    # 1.247 ms against 1.163 for TILE's shape, v's conversion to fp16 included (gpu_server_h200_s20/c4);
    # ptxas turns tanh.approx.f16x2 and .bf16x2 into two MUFU.TANH instructions a pair on sm_90, so
    # the packed form saves no hardware tanh.
)


@triton.jit
def _silu(s, alpha, FAST: tl.constexpr):
    # silu(alpha s). FAST: h (1 + tanh h) with h = alpha s / 2, tanh one hardware instruction
    # (tanh.approx.f32, relative error about 2^-11: below the bf16 rounding of the result).
    if FAST:
        h = s * (0.5 * alpha)
        t = tl.inline_asm_elementwise("tanh.approx.f32 $0, $1;", "=f,f", [h], dtype=tl.float32, is_pure=True, pack=1)
        y = h + h * t
    else:
        x = s * alpha
        y = x / (1.0 + tl.exp2(x * -1.4426950408889634))
    return y


@triton.jit
def _dot(a, b, EMULATE: tl.constexpr):
    # a @ b of fp8 operands, fp32 sums; the interpreter has no fp8 product: widen first (exactly).
    if EMULATE:
        return tl.dot(a.to(tl.float32), b.to(tl.float32), input_precision="ieee")
    return tl.dot(a, b)


@triton.jit
def _p8(p, EMULATE: tl.constexpr):
    # A tile's SiLU output as fp8 e4m3 for its product with v (saturated; EMULATE: rounded as the GPU).
    return _to_fp8(tl.minimum(tl.maximum(p, -448.0), 448.0), EMULATE)


@triton.jit
def _col_scales(ks_base, cols, n, HEADS: tl.constexpr, FP8: tl.constexpr):
    # FP8: the dequantizing scales of k's rows ``cols`` (one per token of this head); else ones
    # (unread: a kernel's returns must agree in type).
    if FP8:
        return tl.load(ks_base + cols * HEADS, mask=cols < n, other=0.0)
    return tl.zeros_like(cols).to(tl.float32) + 1.0


@triton.jit
def _tile(acc, q, k, v, alpha, sq, sk, IEEE: tl.constexpr, FAST: tl.constexpr, FP8: tl.constexpr,
          EMULATE: tl.constexpr):
    # acc += silu(alpha q k^T) v, every product seen (FP8: q, k, v in e4m3; the scores dequantized
    # by q's row scales ``sq`` and k's column scales ``sk``).
    if FP8:
        s = _dot(q, tl.trans(k), EMULATE) * sq[:, None] * sk[None, :]
        acc += _dot(_p8(_silu(s, alpha, FAST), EMULATE), v, EMULATE)
    elif IEEE:  # fp32 inputs: full-precision products, not TF32
        s = tl.dot(q, tl.trans(k), input_precision="ieee")
        acc += tl.dot(_silu(s, alpha, FAST), v, input_precision="ieee")
    else:
        s = tl.dot(q, tl.trans(k))
        acc += tl.dot(_silu(s, alpha, FAST).to(v.dtype), v)
    return acc


@triton.jit
def _masked(acc, q, k, v, rows, row_id, cols, lo, hi, hist, alpha, sq, sk, IEEE: tl.constexpr, FAST: tl.constexpr,
            FP8: tl.constexpr, EMULATE: tl.constexpr):
    # Key columns ``cols`` (from ``lo``, below ``hi``) of one request, their keys k and values v
    # (zero past the request), each product kept only where the mask says the row sees the column.
    if FP8:
        s = _dot(q, tl.trans(k), EMULATE) * sq[:, None] * sk[None, :]
    elif IEEE:
        s = tl.dot(q, tl.trans(k), input_precision="ieee")
    else:
        s = tl.dot(q, tl.trans(k))
    p = _silu(s, alpha, FAST)
    col_id = tl.minimum(cols, hist + 1)
    seen = (row_id[:, None] > col_id[None, :]) | (rows[:, None] == cols[None, :])
    seen = seen | ((rows[:, None] == 0) & (cols[None, :] <= hist))
    seen = seen & (cols[None, :] >= lo) & (cols[None, :] < hi)
    p = tl.where(seen, p, 0.0)
    if FP8:
        acc += _dot(_p8(p, EMULATE), v, EMULATE)
    elif IEEE:
        acc += tl.dot(p, v, input_precision="ieee")
    else:
        acc += tl.dot(p.to(v.dtype), v)
    return acc


@triton.jit
def _keys_values(k_desc, v_desc, k_base, v_base, c, cols, n, s_kt, s_vt, s_vd, dq, dv, TMA: tl.constexpr,
                 V_T: tl.constexpr):
    # One request's keys and values of columns c + cols (zeros past the request): through the
    # descriptors (TMA) or plain loads.
    if TMA:
        at = tl.cast(c, tl.int32)  # a descriptor's offsets are 32-bit on the GPU
        k = k_desc.load([at, 0])
        if V_T:
            v = tl.trans(v_desc.load([0, at]))
        else:
            v = v_desc.load([at, 0])
    else:
        inside = (c + cols)[:, None] < n
        k = tl.load(k_base + (c + cols)[:, None] * s_kt + dq[None, :], mask=inside, other=0.0)
        v = tl.load(v_base + (c + cols)[:, None] * s_vt + dv[None, :] * s_vd, mask=inside, other=0.0)
    return k, v


@triton.jit
def _hstu_fwd(q_ptr, k_ptr, v_ptr, o_ptr, offsets_ptr, q_offsets_ptr, v_offsets_ptr, history_ptr, qs_ptr, ks_ptr, vs_ptr,
              alpha, inv_scale,
              s_qt, s_qh, s_kt, s_kh, s_vt, s_vh, s_vd, s_ot, s_oh, HEADS: tl.constexpr,
              DQK: tl.constexpr, DV: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
              CANDIDATES: tl.constexpr, IEEE: tl.constexpr, FAST: tl.constexpr, ROWS_FIRST: tl.constexpr,
              TMA: tl.constexpr, FP8: tl.constexpr, EMULATE: tl.constexpr, V_T: tl.constexpr):
    # V_T: v is laid out channels by tokens (s_vt 1; fp8, see quantize_qkv): a (BLOCK_N, DV) tile of
    # it has the product's inner dimension contiguous, as Hopper's 8-bit products need, and request
    # b's tokens start at column v_offsets_ptr[b], a multiple of 16.
    if ROWS_FIRST:  # axis 0 the row blocks, 1 the (request, head) pairs
        pid = tl.program_id(1)
        block = tl.program_id(0)
        blocks = tl.num_programs(0)
    else:
        pid = tl.program_id(0)
        block = tl.program_id(1)
        blocks = tl.num_programs(1)
    b = pid // HEADS
    head = pid % HEADS
    start = tl.load(offsets_ptr + b)
    n = tl.load(offsets_ptr + b + 1) - start
    hist = tl.load(history_ptr + b)
    q_start = tl.load(q_offsets_ptr + b)
    q_n = tl.load(q_offsets_ptr + b + 1) - q_start
    # Last row blocks first: they hold the candidate rows, which walk the whole history.
    lo = (blocks - 1 - block) * BLOCK_M  # within this request's queries
    if lo < q_n:
        first = hist + 1 if CANDIDATES else 0  # the request's row of query 0
        j = lo + tl.arange(0, BLOCK_M)
        rows = first + j
        dq = tl.arange(0, DQK)
        dv = tl.arange(0, DV)
        # FP8: the dequantizing scales, made on the device: q's per row, k's per token (read per
        # tile), v's per channel (applied to the output's columns).
        ks_base = ks_ptr + start * HEADS + head
        if FP8:
            sq = tl.load(qs_ptr + (q_start + j) * HEADS + head, mask=j < q_n, other=0.0)
        else:
            sq = 1.0
        k_base = k_ptr + head * s_kh + start * s_kt
        v_start = tl.load(v_offsets_ptr + b) if V_T else start
        v_base = v_ptr + head * s_vh + v_start * s_vt
        if TMA:  # q's block and k's and v's through descriptors (rows past the request read as zeros)
            q_desc = tl.make_tensor_descriptor(q_ptr + head * s_qh + q_start * s_qt, shape=[q_n.to(tl.int32), DQK],
                                               strides=[s_qt, 1], block_shape=[BLOCK_M, DQK])
            q = q_desc.load([lo.to(tl.int32), 0])
            k_desc = tl.make_tensor_descriptor(k_base, shape=[n.to(tl.int32), DQK], strides=[s_kt, 1],
                                               block_shape=[BLOCK_N, DQK])
            if V_T:  # (channels, tokens) blocks, turned for the product: the request's columns start aligned
                v_desc = tl.make_tensor_descriptor(v_base, shape=[DV, n.to(tl.int32)], strides=[s_vd, 1],
                                                   block_shape=[DV, BLOCK_N])
            else:
                v_desc = tl.make_tensor_descriptor(v_base, shape=[n.to(tl.int32), DV], strides=[s_vt, 1],
                                                   block_shape=[BLOCK_N, DV])
        else:
            q = tl.load(q_ptr + head * s_qh + (q_start + j[:, None]) * s_qt + dq[None, :], mask=j[:, None] < q_n,
                        other=0.0)
            k_desc = None
            v_desc = None
        row_id = tl.minimum(rows, hist + 1)
        acc = tl.zeros((BLOCK_M, DV), dtype=tl.float32)
        lo_row = first + lo
        last = first + tl.minimum(lo + BLOCK_M, q_n) - 1  # the block's last real row
        # Columns every row of the block sees: below its first row (history rows), the whole
        # history (candidate rows only); none when the block holds the user row.
        full = tl.where(lo_row == 0, 0, tl.where(lo_row > hist, hist + 1, lo_row))
        full = full // BLOCK_N * BLOCK_N
        cols = tl.arange(0, BLOCK_N)
        if TMA:
            # A descriptor's offsets are 32-bit (the interpreter takes 64; the GPU compiler does not).
            for c in tl.range(0, full.to(tl.int32), BLOCK_N):
                k, v = _keys_values(k_desc, v_desc, k_base, v_base, c, cols, n, s_kt, s_vt, s_vd, dq, dv, TMA, V_T)
                acc = _tile(acc, q, k, v, alpha, sq, _col_scales(ks_base, c + cols, n, HEADS, FP8), IEEE, FAST, FP8,
                            EMULATE)
        else:
            k_ptrs = k_base + cols[:, None] * s_kt + dq[None, :]
            v_ptrs = v_base + cols[:, None] * s_vt + dv[None, :] * s_vd
            for c in range(0, full, BLOCK_N):
                acc = _tile(acc, q, tl.load(k_ptrs), tl.load(v_ptrs), alpha, sq,
                            _col_scales(ks_base, c + cols, n, HEADS, FP8), IEEE, FAST, FP8, EMULATE)
                k_ptrs += BLOCK_N * s_kt
                v_ptrs += BLOCK_N * s_vt
        # The rest of the history, masked: up to the last row for a block of history rows only; the
        # whole history for a block holding the user row or candidate rows.
        end = tl.where((lo_row == 0) | (last > hist), hist + 1, last + 1)
        for c in range(full, end, BLOCK_N):
            k, v = _keys_values(k_desc, v_desc, k_base, v_base, c, cols, n, s_kt, s_vt, s_vd, dq, dv, TMA, V_T)
            acc = _masked(acc, q, k, v, rows, row_id, c + cols, 0, end, hist, alpha, sq,
                          _col_scales(ks_base, c + cols, n, HEADS, FP8), IEEE, FAST, FP8, EMULATE)
        # A candidate sees itself: the diagonal of the columns from the block's first candidate row
        # to its last (past the history, where the mask keeps no other product); none for history
        # rows. V_T's blocks start at multiples of 16 tokens (16 bytes of fp8, as a descriptor's
        # innermost offset must).
        own = tl.maximum(lo_row, hist + 1)
        for c in range(own // (16 if V_T else 1) * (16 if V_T else 1), last + 1, BLOCK_N):
            k, v = _keys_values(k_desc, v_desc, k_base, v_base, c, cols, n, s_kt, s_vt, s_vd, dq, dv, TMA, V_T)
            acc = _masked(acc, q, k, v, rows, row_id, c + cols, own, last + 1, hist, alpha, sq,
                          _col_scales(ks_base, c + cols, n, HEADS, FP8), IEEE, FAST, FP8, EMULATE)
        if FP8:  # v's channel scales, read last: held through the loops they would cost registers
            acc = acc * (inv_scale * tl.load(vs_ptr + head * DV + dv)[None, :])
        else:
            acc = acc * inv_scale
        if TMA:
            o_desc = tl.make_tensor_descriptor(o_ptr + head * s_oh + q_start * s_ot, shape=[q_n.to(tl.int32), DV],
                                               strides=[s_ot, 1], block_shape=[BLOCK_M, DV])
            o_desc.store([lo.to(tl.int32), 0], acc.to(o_ptr.dtype.element_ty))
        else:
            o_ptrs = o_ptr + head * s_oh + (q_start + j[:, None]) * s_ot + dv[None, :]
            tl.store(o_ptrs, acc.to(o_ptr.dtype.element_ty), mask=j[:, None] < q_n)


def _fast_silu(device: torch.device) -> bool:
    """The hardware tanh exists on a CUDA GPU only, not in Triton's interpreter."""
    return device.type == "cuda" and os.environ.get("TRITON_INTERPRET", "0") != "1"


@triton.jit
def _quantize_fwd(x_ptr, out_ptr, scale_ptr, col_ptr, to_ptr, rows, s_t, s_h, o_t, o_h, o_d, sc_t, sc_h,
                  HEADS: tl.constexpr, D: tl.constexpr, BLOCK_R: tl.constexpr, PER_ROW: tl.constexpr,
                  SCATTER: tl.constexpr, EMULATE: tl.constexpr):
    # Rows r = (token, head) of x (T, HEADS, D), strided, into out as fp8 e4m3, strided by (o_t, o_h,
    # o_d) (v: channels by tokens), token t at out's token to_ptr[t] with SCATTER, else at t: divided
    # by their own scale (PER_ROW: largest magnitude over 448, stored at scale_ptr + t sc_t + h sc_h)
    # or by the per-(head, channel) scales at col_ptr.
    r = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)
    d = tl.arange(0, D)
    ok = r < rows
    t = (r // HEADS).to(tl.int64)
    h = r % HEADS
    x = tl.load(x_ptr + t[:, None] * s_t + h[:, None] * s_h + d[None, :], mask=ok[:, None], other=0.0).to(tl.float32)
    if PER_ROW:
        scale = tl.maximum(tl.max(tl.abs(x), axis=1) / 448.0, 1e-30)
        tl.store(scale_ptr + t * sc_t + h * sc_h, scale, mask=ok)
        y = x / scale[:, None]
    else:
        y = x / tl.load(col_ptr + h[:, None] * D + d[None, :])
    q = _to_fp8(tl.minimum(tl.maximum(y, -448.0), 448.0), EMULATE)
    if SCATTER:
        t = tl.load(to_ptr + t, mask=ok, other=0)
    tl.store(out_ptr + t[:, None] * o_t + h[:, None] * o_h + d[None, :].to(tl.int64) * o_d, q, mask=ok[:, None])


#: Rows (token, head) per program of the quantizing kernel.
QUANTIZE_ROWS = 16


#: Where :func:`quantize_qkv` puts each request's first token of v (channels by tokens): a
#: multiple of this many columns, so a tensor descriptor's base at that column is 16-byte aligned.
V_ALIGN = 16


@dataclass(frozen=True)
class Quantized:
    """q, k and v as fp8 e4m3 with their dequantizing scales (:func:`quantize_qkv`).

    ``q`` (Tq, heads, D) and ``k`` (T, heads, D) in token order, scaled per token and head
    (``q_scales`` (Tq, heads), ``k_scales`` (T, heads)); ``v`` scaled per head and channel
    (``v_scales`` (heads, Dv)). For a power-of-two Dv, ``v`` is a (columns, heads, Dv) view of
    (heads, Dv, columns) storage, tokens contiguous, where request b's tokens start at column
    ``v_offsets[b]`` (a multiple of :data:`V_ALIGN`) and token t sits at column ``v_index[t]``;
    otherwise ``v`` is (T, heads, Dv) in token order (``v_offsets`` the requests' offsets,
    ``v_index`` None)."""

    q: torch.Tensor
    k: torch.Tensor
    v: torch.Tensor
    q_scales: torch.Tensor
    k_scales: torch.Tensor
    v_scales: torch.Tensor
    v_offsets: torch.Tensor
    v_index: torch.Tensor | None

    def v_tokens(self) -> torch.Tensor:
        """v8 as (T, heads, Dv) in token order (a copy where v is laid out by request)."""
        return self.v if self.v_index is None else self.v[self.v_index]


def _aligned_columns(offsets: torch.Tensor, tokens: int, align: int) -> tuple[torch.Tensor, int]:
    """Each request's first column of v laid out channels by tokens (``offsets`` (N + 1) packing
    ``tokens`` tokens), every request starting at a multiple of ``align``; and the columns to
    allocate (an upper bound known on the host: nothing waits for the device)."""
    offsets = offsets.to(torch.int64)
    lengths = offsets[1:] - offsets[:-1]
    columns = torch.zeros_like(offsets)
    columns[1:] = torch.cumsum((lengths + align - 1) // align * align, 0)
    width = triton.cdiv(tokens + align * (len(offsets) - 1), align) * align
    return columns, max(width, align)


def _request_columns(offsets: torch.Tensor, tokens: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """:func:`_aligned_columns` at :data:`V_ALIGN`, with each token's column between them."""
    columns, width = _aligned_columns(offsets, tokens, V_ALIGN)
    offsets = offsets.to(torch.int64)
    shift = torch.repeat_interleave(columns[:-1] - offsets[:-1], offsets.diff(), output_size=tokens)
    return columns, torch.arange(tokens, device=offsets.device) + shift, width


#: Rows (token, head) per program of :func:`quantize_heads`.
QUANTIZE_HEAD_ROWS = 32


def quantize_heads(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x (T, heads, D), bf16, any token and head strides, as fp8 e4m3 (T, heads, D) contiguous with
    one dequantizing scale per token and head (its largest magnitude over 448), laid out (heads, T)
    so that a head's scales are contiguous: what the Gluon kernel's fp8 scores read
    (:mod:`suite.backends.kernels.hstu_wg`, ``qk_fp8``). One pass: x read once, written once."""
    tokens, heads, d = x.shape
    x8 = torch.empty((tokens, heads, d), dtype=torch.float8_e4m3fn, device=x.device)
    scale = torch.empty((heads, tokens), dtype=torch.float32, device=x.device)
    if tokens * heads:
        _quantize_fwd[(triton.cdiv(tokens * heads, QUANTIZE_HEAD_ROWS),)](
            x, x8, scale, scale, x, tokens * heads, x.stride(0), x.stride(1), *x8.stride(), 1, tokens, HEADS=heads, D=d,
            BLOCK_R=QUANTIZE_HEAD_ROWS, PER_ROW=True, SCATTER=False, EMULATE=interpreted(), num_warps=4)
    return x8, scale


@triton.jit
def _spans_fwd(x_ptr, out_ptr, scale_ptr, offsets_ptr, s_t, s_h, o_t, o_h, sc_h, HEADS: tl.constexpr, D: tl.constexpr,
               BLOCK_T: tl.constexpr, QUANTIZE: tl.constexpr, ROUND: tl.constexpr):
    # A chunk of BLOCK_T tokens of request b, every head: without QUANTIZE, each head's largest
    # magnitude over 448 into its (head, request) scale (an atomic max over the request's chunks,
    # from zeros); with it, the tokens divided by that scale as e4m3.
    b = tl.program_id(0)
    start = tl.load(offsets_ptr + b)
    end = tl.load(offsets_ptr + b + 1)
    t = start + tl.program_id(1) * BLOCK_T + tl.arange(0, BLOCK_T)
    ok = (t < end)[:, None]
    d = tl.arange(0, D)
    t64 = t[:, None].to(tl.int64)
    for h in tl.static_range(HEADS):
        x = tl.load(x_ptr + t64 * s_t + h * s_h + d[None, :], mask=ok, other=0.0).to(tl.float32)
        if QUANTIZE:
            scale = tl.maximum(tl.load(scale_ptr + h * sc_h + b), 1e-30)
            tl.store(out_ptr + t64 * o_t + h * o_h + d[None, :], _scaled_fp8(x, scale, ROUND), mask=ok)
        else:
            tl.atomic_max(scale_ptr + h * sc_h + b, tl.max(tl.max(tl.abs(x), axis=1), axis=0) / 448.0)


#: Tokens per program of :func:`quantize_spans`.
SPAN_TOKENS = 64


@triton.jit
def _given_fp8_fwd(x_ptr, out_ptr, scale_ptr, tokens, s_t, W: tl.constexpr, D: tl.constexpr, BLOCK_T: tl.constexpr,
                   ROUND: tl.constexpr):
    # BLOCK_T tokens of x, each W = heads * D contiguous values (a row of the projection's output),
    # divided by their head's scale (scale_ptr: one a head), clamped to e4m3's range, written
    # contiguous: whole rows a program, where _spans_fwd reads a head's D values at a time.
    t = tl.program_id(0) * BLOCK_T + tl.arange(0, BLOCK_T)
    c = tl.arange(0, W)
    ok = (t < tokens)[:, None]
    t64 = t[:, None].to(tl.int64)
    x = tl.load(x_ptr + t64 * s_t + c[None, :], mask=ok, other=0.0).to(tl.float32)
    scale = tl.maximum(tl.load(scale_ptr + c // D), 1e-30)
    tl.store(out_ptr + t64 * W + c[None, :], _scaled_fp8(x, scale[None, :], ROUND), mask=ok)


#: Tokens per program of :func:`quantize_spans` with given scales.
GIVEN_TOKENS = 16


#: Tokens a chunk of :func:`quantize_v_columns`: the columns an 8-bit product of p v takes at once
#: (the k of Hopper's e4m3 ``wgmma``), and so the alignment of every request's first column.
V_CHUNK = 32


@triton.jit
def _v_columns_fwd(v_ptr, out_ptr, scale_ptr, offsets_ptr, columns_ptr, s_t, o_h, o_d, HEADS: tl.constexpr,
                   D: tl.constexpr, BLOCK_T: tl.constexpr, ROUND: tl.constexpr):
    # BLOCK_T tokens (whole chunks of 32) of request b, head h, into v^T's columns: position m of a
    # chunk holds token pi(m), the column the Gluon kernel's 8-bit p holds in that register
    # (hstu_wg._p_e4m3); padding tokens as zeros, and no column written past the request's last
    # chunk. Read as rows of D values, written as rows of BLOCK_T columns.
    b = tl.program_id(0)
    h = tl.program_id(2)
    start = tl.load(offsets_ptr + b)
    n = tl.load(offsets_ptr + b + 1) - start
    t0 = tl.program_id(1) * BLOCK_T
    if t0 < n:
        m = tl.arange(0, BLOCK_T)
        i = m % 32
        tok = t0 + (m - i) + ((i & 1) | (((i >> 2) & 1) << 1) | (((i >> 3) & 1) << 2) | (((i >> 1) & 1) << 3) | (i & 16))
        d = tl.arange(0, D)
        x = tl.load(v_ptr + (start + tok)[:, None].to(tl.int64) * s_t + h * D + d[None, :], mask=(tok < n)[:, None],
                    other=0.0).to(tl.float32)
        y = _scaled_fp8(x, tl.maximum(tl.load(scale_ptr + h), 1e-30), ROUND)
        # A request's first column is a multiple of 32, and a chunk is written whole or not at all:
        # said so, the store goes 16 bytes a thread (without it, a byte a thread: 32 stores each).
        col = tl.multiple_of(tl.load(columns_ptr + b), 32) + t0 + m
        written = t0 + (m // 32) * 32 < n
        tl.store(out_ptr + h * o_h + d[:, None] * o_d + col[None, :], tl.trans(y), mask=written[None, :])


#: Tokens a program of :func:`quantize_v_columns` (whole chunks). On an H200 (8 MLPerf-size
#: requests) the pass took 0.150 ms with 32 and 4 warps, 0.215 ms with 128 and 8 warps, in two
#: calls (benchmarks/results/gpu_server_h200_s28/c5, c6): about a fifth of the memory's rate.
#: It then wrote v^T a byte a thread (32 stores each, seen in its PTX); it now writes 16 bytes a
#: thread (two stores), not yet timed on a GPU.
V_COLUMN_TOKENS = 32


def quantize_v_columns(v: torch.Tensor, offsets: torch.Tensor, longest: int,
                       scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """v (T, heads, D), bf16, packed by ``offsets`` (N + 1) into requests of at most ``longest``
    tokens, divided by its head's ``scale`` (heads,) and clamped, as fp8 e4m3 laid out channels by
    tokens (heads, D, columns): what the Gluon kernel reads for ``p v`` in e4m3, whose second
    operand Hopper takes only with the tokens contiguous. Request b starts at column
    ``columns[b]``, a multiple of :data:`V_CHUNK`, and within each chunk of 32 its tokens are in
    the order the kernel's 8-bit p holds its columns (so p needs no shuffle); padding columns are
    zeros. -> (v^T, columns (N + 1)). One pass; the column count is a bound known on the host."""
    tokens, heads, d = v.shape
    if v.stride(2) != 1 or v.stride(1) != d:  # the pass reads a token's heads as one row of heads * d
        v = v.contiguous()
    n = len(offsets) - 1
    columns, width = _aligned_columns(offsets, tokens, V_CHUNK)
    out = torch.empty((heads, d, width), dtype=torch.float8_e4m3fn, device=v.device)
    # The pass writes every chunk of every request, columns[n] >= tokens of them: only the columns
    # past the tokens may be left, and zeros there cost a memset of (n + 1) chunks, not of v^T.
    out[:, :, tokens:].zero_()
    if tokens and n:
        per_head = scale.to(device=v.device, dtype=torch.float32).reshape(heads).contiguous()
        _v_columns_fwd[(n, triton.cdiv(longest, V_COLUMN_TOKENS), heads)](
            v, out, per_head, offsets, columns, v.stride(0), out.stride(0), out.stride(1), HEADS=heads, D=d,
            BLOCK_T=V_COLUMN_TOKENS, ROUND=interpreted(), num_warps=4)
    return out, columns


def quantize_spans(x: torch.Tensor, offsets: torch.Tensor, longest: int, *,
                   given: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """x (T, heads, D), bf16, packed by ``offsets`` (N + 1) into requests of at most ``longest``
    tokens (an upper bound known on the host: nothing waits for the device), as fp8 e4m3 (T, heads,
    D) contiguous with one dequantizing scale per head and request (the largest magnitude of that
    head's values in the request over 448; 0 for a request of zeros), laid out (heads, N): the Gluon
    kernel's keys with ``qk_fp8``, whose scale then multiplies a whole row of scores at once. Two
    passes over x (the scales, then the values); one with ``given`` (heads,): each head's scale for
    every request, values past 448 times it clamped."""
    tokens, heads, d = x.shape
    n = len(offsets) - 1
    x8 = torch.empty((tokens, heads, d), dtype=torch.float8_e4m3fn, device=x.device)
    if given is None:
        scale = torch.zeros((heads, n), dtype=torch.float32, device=x.device)
    else:
        per_head = given.to(device=x.device, dtype=torch.float32).reshape(heads).contiguous()
        scale = per_head.view(heads, 1).expand(heads, n).contiguous()
    if given is not None and tokens and x.stride(1) == d and x.stride(2) == 1 and not (heads * d) & (heads * d - 1):
        _given_fp8_fwd[(triton.cdiv(tokens, GIVEN_TOKENS),)](x, x8, per_head, tokens, x.stride(0), W=heads * d,
                                                             D=d, BLOCK_T=GIVEN_TOKENS, ROUND=interpreted(), num_warps=8)
    elif tokens and n:
        grid = (n, triton.cdiv(longest, SPAN_TOKENS))
        for quantize in (False, True) if given is None else (True,):
            _spans_fwd[grid](x, x8, scale, offsets, x.stride(0), x.stride(1), x8.stride(0), x8.stride(1), n, HEADS=heads, D=d,
                             BLOCK_T=SPAN_TOKENS, QUANTIZE=quantize, ROUND=interpreted(), num_warps=4)
    return x8, scale


def quantize_qkv(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, offsets: torch.Tensor) -> Quantized:
    """q (Tq, heads, D), k (T, heads, D) and v (T, heads, Dv), v's requests packed by ``offsets``
    (N + 1), as fp8 e4m3 with their dequantizing scales (fp32, made on their device, so nothing
    waits for the host): q's and k's per token and head, v's per head and channel, each the largest
    magnitude it covers over 448. One kernel pass each (v's scales first, from two reductions):
    read once, written once as fp8, where torch's elementwise ops made five fp32 passes.
    For a power-of-two Dv, v8 is laid out channels by tokens, each request from a 16-byte
    boundary (:class:`Quantized`): Hopper's 8-bit products take their second operand only with its
    inner dimension contiguous, for the product with v the tokens, and a tensor descriptor reads a
    request's blocks only from an aligned base (the padding columns are zeros)."""
    emulate = interpreted()
    sv = (torch.maximum(v.amax(dim=0), -v.amin(dim=0)).float() / FP8_MAX).clamp_min(1e-30).contiguous()
    out: list[torch.Tensor] = []
    scales: list[torch.Tensor] = []
    v_offsets, v_index = offsets, None
    for x, per_row in ((q, True), (k, True), (v, False)):
        tokens, heads, d = x.shape
        if d & (d - 1):  # not a power of two wide: torch's elementwise ops, the same numbers
            scale = (x.abs().amax(dim=-1).float() / FP8_MAX).clamp_min(1e-30) if per_row else sv
            divided = x.float() / (scale[..., None] if per_row else scale[None])
            out.append(divided.clamp(-FP8_MAX, FP8_MAX).to(torch.float8_e4m3fn))
            scales.append(scale)
            continue
        if x.stride(-1) != 1:
            x = x.contiguous()
        to = x  # read only with SCATTER
        if per_row:
            x8 = torch.empty((tokens, heads, d), dtype=torch.float8_e4m3fn, device=x.device)
        else:  # channels by tokens, each request from an aligned column
            v_offsets, v_index, width = _request_columns(offsets, tokens)
            to = v_index
            x8 = torch.zeros((heads, d, width), dtype=torch.float8_e4m3fn, device=x.device).permute(2, 0, 1)
        scale = torch.empty((tokens, heads), dtype=torch.float32, device=x.device) if per_row else sv
        if tokens * heads:
            _quantize_fwd[(triton.cdiv(tokens * heads, QUANTIZE_ROWS),)](
                x, x8, scale, sv, to, tokens * heads, x.stride(0), x.stride(1), *x8.stride(), heads, 1, HEADS=heads, D=d,
                BLOCK_R=QUANTIZE_ROWS, PER_ROW=per_row, SCATTER=not per_row, EMULATE=emulate, num_warps=4)
        out.append(x8)
        scales.append(scale)
    return Quantized(*out, *scales, v_offsets=v_offsets, v_index=v_index)


def hstu_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, offsets: torch.Tensor, history: torch.Tensor,
                   max_len: int, alpha: float, scale: int, *, q_offsets: torch.Tensor | None = None,
                   max_queries: int | None = None, tile: Tile | None = None, fp8: bool = False) -> torch.Tensor:
    """k (T, heads, Dqk), v (T, heads, Dv) packed by ``offsets`` (N + 1) with each request's
    ``history`` length (N,); q (T, heads, Dqk) likewise -> (T, heads, Dv) in fp32. With
    ``q_offsets`` (N + 1), q holds each request's candidate rows only, packed by ``q_offsets``
    (``max_queries``: the most of any request), and so does the result. The last dimension must be
    contiguous. ``tile``: the launch shape (default :data:`TILE`, :data:`FP8_TILE` in fp8; for short
    requests 16 x 16, 16 x 32 in fp8). ``fp8``: both products in fp8 e4m3 (:func:`quantize_qkv`; see the module)."""
    total, heads, dqk = k.shape
    dv = v.shape[-1]
    rows = q.shape[0]
    out_dtype = torch.promote_types(q.dtype, torch.float32)
    # The output in fp32 whatever the inputs: each row sums thousands of keys, accumulated in fp32;
    # rounding that sum to bf16 would throw away what the accumulation kept (docs/dlrm-v3.md).
    if total == 0 or rows == 0:
        return v.new_zeros((rows, heads, dv), dtype=out_dtype)
    qs = ks = vs = v_offsets = offsets  # read only by the fp8 launch
    if fp8:
        quantized = quantize_qkv(q, k, v, offsets)
        q, k, v = quantized.q, quantized.k, quantized.v
        qs, ks, vs, v_offsets = quantized.q_scales, quantized.k_scales, quantized.v_scales, quantized.v_offsets
    v_t = fp8 and v.stride(-1) != 1  # channels by tokens, as quantize_qkv lays it
    if q.stride(-1) != 1 or k.stride(-1) != 1 or (v.stride(-1) != 1 and not v_t):
        q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
    candidates = q_offsets is not None
    if q_offsets is None:
        q_offsets, max_queries = offsets, max_len
    assert max_queries is not None, "q_offsets needs max_queries"
    out = torch.empty((rows, heads, dv), dtype=out_dtype, device=q.device)
    if tile is None:  # an fp8 product's inner dimension is at least 32 on the GPU
        tile = (FP8_TILE if fp8 else TILE) if max_len > SMALL else Tile(16, 32 if fp8 else 16, 4, 1)
    tma = tile.tma and _aligned(q, k, v) and _allocator(q.device)
    pairs, blocks = (len(offsets) - 1) * heads, triton.cdiv(max_queries, tile.block_m)
    grid = (blocks, pairs) if tile.rows_first else (pairs, blocks)
    _hstu_fwd[grid](q, k, v, out, offsets, q_offsets, v_offsets, history, qs, ks, vs, alpha, 1.0 / scale,
                    q.stride(0), q.stride(1), k.stride(0), k.stride(1), v.stride(0), v.stride(1), v.stride(2),
                    out.stride(0), out.stride(1), HEADS=heads, DQK=dqk, DV=dv, BLOCK_M=tile.block_m,
                    BLOCK_N=tile.block_n, CANDIDATES=candidates, IEEE=q.dtype == torch.float32,
                    FAST=tile.fast and _fast_silu(q.device), ROWS_FIRST=tile.rows_first, TMA=tma,
                    FP8=fp8, EMULATE=fp8 and interpreted(), V_T=v_t, num_warps=tile.num_warps, num_stages=tile.num_stages,
                    **({"maxnreg": tile.max_registers} if tile.max_registers else {}))
    return out


def _aligned(*tensors: torch.Tensor) -> bool:
    """A tensor descriptor needs its base address and every stride but the unit one at multiples of 16 bytes."""
    return all(t.data_ptr() % 16 == 0 and all(stride * t.element_size() % 16 == 0 for stride in t.stride() if stride != 1)
               for t in tensors)


#: Which threads have given Triton its allocator: Triton keeps it in a ContextVar, so a thread of
#: its own (a lane, a harness worker) starts without one, and a kernel that builds its tensor
#: descriptors on the device then fails at launch ("no allocator was set"; seen on the H200 when a
#: Server batch ran eagerly in a worker thread after the load thread had set it).
_ALLOCATOR_SET = threading.local()


def _allocator(device: torch.device) -> bool:
    """Give Triton, in this thread, the scratch memory a kernel's own tensor descriptors are built
    in: device memory of the current CUDA device (the one the kernel launches on) from torch's
    caching allocator, which inside a CUDA graph capture is the graph's pool. False where this
    Triton has no allocator hook; Triton's interpreter needs none."""
    if device.type != "cuda" or getattr(_ALLOCATOR_SET, "done", False):
        return True
    set_allocator = getattr(triton, "set_allocator", None)
    if set_allocator is None:
        return False

    def scratch(size: int, alignment: int, stream: Any) -> torch.Tensor:
        return torch.empty(size, dtype=torch.int8, device="cuda")

    set_allocator(scratch)
    _ALLOCATOR_SET.done = True
    return True


@triton.jit
def _layer_norm(x, D: tl.constexpr, eps):
    mean = tl.sum(x, axis=1) / D
    xc = x - mean[:, None]
    var = tl.sum(xc * xc, axis=1) / D
    return xc * (1.0 / tl.sqrt(var + eps))[:, None]


@triton.jit
def _norm_to_fwd(x_ptr, o_ptr, rows, s_x, s_o, eps, D: tl.constexpr, BLOCK_R: tl.constexpr):
    r = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)
    d = tl.arange(0, D)
    m = r[:, None] < rows
    x = tl.load(x_ptr + r[:, None] * s_x + d[None, :], mask=m, other=0.0).to(tl.float32)
    tl.store(o_ptr + r[:, None] * s_o + d[None, :], _layer_norm(x, D, eps).to(o_ptr.dtype.element_ty), mask=m)


@triton.jit
def _gate_fwd(u_ptr, a_ptr, o_ptr, rows, s_u, s_a, s_o, eps, D: tl.constexpr, BLOCK_R: tl.constexpr):
    r = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)
    d = tl.arange(0, D)
    m = r[:, None] < rows
    u = tl.load(u_ptr + r[:, None] * s_u + d[None, :], mask=m, other=0.0).to(tl.float32)
    su = (u / (1.0 + tl.exp(-u))).to(o_ptr.dtype.element_ty)  # silu(u), rounded as F.silu rounds it
    a = tl.load(a_ptr + r[:, None] * s_a + d[None, :], mask=m, other=0.0).to(tl.float32)
    y = su.to(tl.float32) * _layer_norm(a, D, eps)
    out = o_ptr + r[:, None] * s_o + d[None, :]
    tl.store(out, su, mask=m)
    tl.store(out + D, a.to(o_ptr.dtype.element_ty), mask=m)
    tl.store(out + 2 * D, y.to(o_ptr.dtype.element_ty), mask=m)


@triton.jit
def _row_scales(top, s_ptr, r, ok):
    # Dequantizing scales of rows whose largest magnitudes are ``top``, stored at s_ptr + r
    # (suite.models.dlrm_v3_fp8.quantize_rows).
    scale = tl.maximum(top / 448.0, 1e-30)
    tl.store(s_ptr + r, scale, mask=ok)
    return scale[:, None]


@triton.jit
def _scaled_fp8(y, scale, ROUND: tl.constexpr):
    return _to_fp8(tl.minimum(tl.maximum(y / scale, -448.0), 448.0), ROUND)


@triton.jit
def _norm_fp8_fwd(x_ptr, o_ptr, s_ptr, rows, s_x, s_o, eps, D: tl.constexpr, BLOCK_R: tl.constexpr, ROUND: tl.constexpr):
    r = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)
    d = tl.arange(0, D)
    ok = r < rows
    r64 = r[:, None].to(tl.int64)
    y = _layer_norm(tl.load(x_ptr + r64 * s_x + d[None, :], mask=ok[:, None], other=0.0).to(tl.float32), D, eps)
    scale = _row_scales(tl.max(tl.abs(y), axis=1), s_ptr, r, ok)
    tl.store(o_ptr + r64 * s_o + d[None, :], _scaled_fp8(y, scale, ROUND), mask=ok[:, None])


@triton.jit
def _gate_fp8_fwd(u_ptr, a_ptr, o_ptr, s_ptr, rows, s_u, s_a, s_o, eps, D: tl.constexpr, BLOCK_R: tl.constexpr,
                  ROUND: tl.constexpr):
    # [silu(u), a, silu(u) * LN(a)] in fp32, one scale a row over all 3 D columns, as e4m3.
    r = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)
    d = tl.arange(0, D)
    ok = r < rows
    m = ok[:, None]
    r64 = r[:, None].to(tl.int64)
    u = tl.load(u_ptr + r64 * s_u + d[None, :], mask=m, other=0.0).to(tl.float32)
    su = u / (1.0 + tl.exp(-u))
    a = tl.load(a_ptr + r64 * s_a + d[None, :], mask=m, other=0.0).to(tl.float32)
    y = su * _layer_norm(a, D, eps)
    top = tl.maximum(tl.maximum(tl.max(tl.abs(su), axis=1), tl.max(tl.abs(a), axis=1)), tl.max(tl.abs(y), axis=1))
    scale = _row_scales(top, s_ptr, r, ok)
    out = o_ptr + r64 * s_o + d[None, :]
    tl.store(out, _scaled_fp8(su, scale, ROUND), mask=m)
    tl.store(out + D, _scaled_fp8(a, scale, ROUND), mask=m)
    tl.store(out + 2 * D, _scaled_fp8(y, scale, ROUND), mask=m)


@triton.jit
def _rows_sum_fwd(out_ptr, at_ptr, src_ptr, t0, i0, t1, i1, t2, i2, t3, i3, rows, s_out, s_src,
                  s_t0, s_t1, s_t2, s_t3, s_i0, s_i1, s_i2, s_i3, D: tl.constexpr, PARTS: tl.constexpr,
                  AT: tl.constexpr, SRC: tl.constexpr, BLOCK_R: tl.constexpr):
    # out[at[r]] = src[r] + t0[i0[r]] + ... + t{PARTS-1}[...], in fp32, left to right.
    r = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)
    d = tl.arange(0, D)
    ok = r < rows
    m = ok[:, None]
    if SRC:
        y = tl.load(src_ptr + r[:, None].to(tl.int64) * s_src + d[None, :], mask=m, other=0.0).to(tl.float32)
    else:
        y = tl.zeros((BLOCK_R, D), dtype=tl.float32)
    y += tl.load(t0 + tl.load(i0 + r * s_i0, mask=ok, other=0).to(tl.int64)[:, None] * s_t0 + d[None, :], mask=m, other=0.0).to(tl.float32)
    if PARTS > 1:
        y += tl.load(t1 + tl.load(i1 + r * s_i1, mask=ok, other=0).to(tl.int64)[:, None] * s_t1 + d[None, :], mask=m, other=0.0).to(tl.float32)
    if PARTS > 2:
        y += tl.load(t2 + tl.load(i2 + r * s_i2, mask=ok, other=0).to(tl.int64)[:, None] * s_t2 + d[None, :], mask=m, other=0.0).to(tl.float32)
    if PARTS > 3:
        y += tl.load(t3 + tl.load(i3 + r * s_i3, mask=ok, other=0).to(tl.int64)[:, None] * s_t3 + d[None, :], mask=m, other=0.0).to(tl.float32)
    if AT:
        dst = tl.load(at_ptr + r, mask=ok, other=0).to(tl.int64)
    else:
        dst = r.to(tl.int64)
    tl.store(out_ptr + dst[:, None] * s_out + d[None, :], y.to(out_ptr.dtype.element_ty), mask=m)


#: Rows per program of the row kernels below (512 wide at dlrm-v3's size).
ROWS_PER_PROGRAM = 4


def _row_kernel_fits(*ts: torch.Tensor) -> bool:
    """The row kernels take 2-D tensors of a power-of-two width with unit column stride, as fp32,
    bf16 or fp16."""
    d = ts[0].shape[-1]
    return all(t.dim() == 2 and t.stride(-1) == 1 and t.shape[-1] == d and t.dtype in (torch.float32, torch.bfloat16, torch.float16)
               for t in ts) and d > 0 and d & (d - 1) == 0


def fused_norm_to(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """:func:`suite.models.dlrm_v3.norm_to` as one kernel: x read once, LN(x) written in ``dtype``
    (the plain path writes it in x's dtype, then reads it again to round it)."""
    from suite.models.dlrm_v3 import norm_to

    if not _row_kernel_fits(x) or dtype not in (torch.float32, torch.bfloat16, torch.float16):
        return norm_to(x, dtype)
    rows, d = x.shape
    out = torch.empty((rows, d), dtype=dtype, device=x.device)
    if rows:
        _norm_to_fwd[(triton.cdiv(rows, ROWS_PER_PROGRAM),)](x, out, rows, x.stride(0), out.stride(0), 1e-5, D=d,
                                                              BLOCK_R=ROWS_PER_PROGRAM, num_warps=4)
    return out


def fused_gate(u: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """:func:`suite.models.dlrm_v3.gate` as one kernel: ``[silu(u), a, silu(u) * LN(a)]`` written
    once into the projection's input (the plain path makes five intermediate tensors and a copy)."""
    from suite.models.dlrm_v3 import gate

    if not _row_kernel_fits(u, a) or u.shape[0] != a.shape[0]:
        return gate(u, a)
    rows, d = u.shape
    out = torch.empty((rows, 3 * d), dtype=u.dtype, device=u.device)
    if rows:
        _gate_fwd[(triton.cdiv(rows, ROWS_PER_PROGRAM),)](u, a, out, rows, u.stride(0), a.stride(0), out.stride(0), 1e-5,
                                                           D=d, BLOCK_R=ROWS_PER_PROGRAM, num_warps=4)
    return out


def fused_norm_fp8(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`suite.models.dlrm_v3_fp8.norm_fp8` as one kernel: x read once, LN(x) written as e4m3
    with each row's scale."""
    from suite.models.dlrm_v3_fp8 import norm_fp8

    if not _row_kernel_fits(x):
        return norm_fp8(x)
    rows, d = x.shape
    out = torch.empty((rows, d), dtype=torch.float8_e4m3fn, device=x.device)
    scale = torch.empty((rows, 1), dtype=torch.float32, device=x.device)
    if rows:
        _norm_fp8_fwd[(triton.cdiv(rows, ROWS_PER_PROGRAM),)](x, out, scale, rows, x.stride(0), out.stride(0), 1e-5, D=d,
                                                               BLOCK_R=ROWS_PER_PROGRAM, ROUND=interpreted(), num_warps=4)
    return out, scale


def fused_gate_fp8(u: torch.Tensor, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`suite.models.dlrm_v3_fp8.gate_fp8` as one kernel: u and a read once, the gate written
    once as e4m3 (a quarter of the fp32 bytes the plain path's concatenation writes) with each
    row's scale."""
    from suite.models.dlrm_v3_fp8 import gate_fp8

    if not _row_kernel_fits(u, a) or u.shape[0] != a.shape[0]:
        return gate_fp8(u, a)
    rows, d = u.shape
    out = torch.empty((rows, 3 * d), dtype=torch.float8_e4m3fn, device=u.device)
    scale = torch.empty((rows, 1), dtype=torch.float32, device=u.device)
    if rows:
        _gate_fp8_fwd[(triton.cdiv(rows, ROWS_PER_PROGRAM),)](u, a, out, scale, rows, u.stride(0), a.stride(0), out.stride(0),
                                                               1e-5, D=d, BLOCK_R=ROWS_PER_PROGRAM, ROUND=interpreted(),
                                                               num_warps=4)
    return out, scale


def fused_rows_sum(out: torch.Tensor, at: torch.Tensor | None, src: torch.Tensor | None,
                   parts: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> None:
    """:func:`suite.models.dlrm_v3.rows_sum` as one kernel: each output row written once from its
    source row and up to four table rows, summed in fp32 in the same order (the plain path made a
    tensor per gather, cast and add: about four times the bytes). For an fp32 ``out`` (or a slice
    of one) of a power-of-two width; anything else takes the plain path."""
    from suite.models.dlrm_v3 import rows_sum

    width = out.shape[-1]
    tensors = [out, *(t for t, _ in parts), *([src] if src is not None else [])]
    if (out.dtype != torch.float32 or not 1 <= len(parts) <= 4 or width & (width - 1) or width > 1024
            or any(t.dim() != 2 or t.stride(-1) != 1 or t.shape[-1] != width for t in tensors)
            or any(ids.dim() != 1 for _, ids in parts)):
        rows_sum(out, at, src, parts)
        return
    rows = len(parts[0][1])
    if not rows:
        return
    tables = [t for t, _ in parts] + [out] * (4 - len(parts))  # unread past PARTS
    ids = [i for _, i in parts] + [parts[0][1]] * (4 - len(parts))
    _rows_sum_fwd[(triton.cdiv(rows, ROWS_PER_PROGRAM),)](
        out, at if at is not None else ids[0], src if src is not None else out,
        tables[0], ids[0], tables[1], ids[1], tables[2], ids[2], tables[3], ids[3], rows, out.stride(0),
        src.stride(0) if src is not None else 0, *(t.stride(0) for t in tables), *(i.stride(0) for i in ids),
        D=width, PARTS=len(parts), AT=at is not None, SRC=src is not None, BLOCK_R=ROWS_PER_PROGRAM, num_warps=4)


def fused_residual_out(x: torch.Tensor, g: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """:func:`suite.models.dlrm_v3.residual_out` with the add inside the product: on a GPU, for an
    fp32 stream and 16-bit weights, one cuBLAS call reads x as its accumulator and writes
    ``x + g W^T`` back into x (the product kept in fp32, not rounded to 16 bits before the add; the
    plain path wrote the product, then read it and x and wrote the sum). x is the layer's own input,
    which nothing reads after the layer. Elsewhere, the plain path."""
    from suite.models.dlrm_v3 import residual_out

    if (x.is_cuda and x.dtype == torch.float32 and g.dtype in (torch.bfloat16, torch.float16) and weight.dtype == g.dtype
            and x.dim() == 2 and x.is_contiguous()):
        return torch.addmm(x, g, weight.t(), out_dtype=torch.float32, out=x)
    return residual_out(x, g, weight)


def fused_jagged_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, jag: Any, alpha: float,
                           candidates: bool = False, *, fp8: bool = False, gluon: bool = False,
                           qk_fp8: bool = False, gluon_out: torch.dtype = torch.float32,
                           k_scale: torch.Tensor | None = None, v_scale: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`suite.models.dlrm_v3.jagged_attention`'s signature, on the kernel (``fp8``: see
    :func:`hstu_attention`; ``gluon``: :mod:`suite.backends.kernels.hstu_wg` where it takes the
    tensors, with q and k in fp8 if ``qk_fp8`` (k by ``k_scale`` if given; v too, by ``v_scale``,
    if given), its output in ``gluon_out``; the Triton kernel's is fp32)."""
    if gluon and jag.max_len > SMALL:
        from suite.backends.kernels import hstu_wg

        if hstu_wg.supported(q, k, v):
            if candidates:
                return hstu_wg.hstu_attention_wg(q, k, v, jag.offsets, jag.history, jag.max_candidates, alpha,
                                                 jag.scale, q_offsets=jag.candidate_offsets, qk_fp8=qk_fp8,
                                                 out_dtype=gluon_out, k_scale=k_scale, v_scale=v_scale)
            return hstu_wg.hstu_attention_wg(q, k, v, jag.offsets, jag.history, jag.max_len, alpha, jag.scale,
                                             qk_fp8=qk_fp8, out_dtype=gluon_out, k_scale=k_scale, v_scale=v_scale)
    if candidates:
        return hstu_attention(q, k, v, jag.offsets, jag.history, jag.max_len, alpha, jag.scale,
                              q_offsets=jag.candidate_offsets, max_queries=jag.max_candidates, fp8=fp8)
    return hstu_attention(q, k, v, jag.offsets, jag.history, jag.max_len, alpha, jag.scale, fp8=fp8)


def attention_flops(history: torch.Tensor, candidates: torch.Tensor, heads: int, dqk: int, dv: int) -> float:
    """Multiply-adds times two of the attention's two products over the (row, column) pairs the
    mask keeps, for requests of these history and candidate counts: what TFLOP/s are counted on."""
    from suite.models.configs import attention_pairs

    return float(attention_pairs(history.double(), candidates.double()).sum()) * heads * 2 * (dqk + dv)


def tune_inputs(history: torch.Tensor, candidates: torch.Tensor, heads: int, dim: int,
                dtype: torch.dtype) -> tuple[Any, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(Jagged, q, k, v): seeded random q, k, v (T, heads, dim) on CUDA of jagged requests of these
    ``history`` and ``candidates`` counts, what :func:`tune` (and ``hstu_wg.tune``) time shapes on."""
    from suite.models.dlrm_v3 import Jagged

    device = torch.device("cuda")
    lengths = 1 + history + candidates
    jag = Jagged.of(history.to(device), candidates.to(device), int(lengths.max()))
    g = torch.Generator(device=device).manual_seed(0)
    q, k, v = (torch.randn(int(lengths.sum()), heads, dim, device=device, generator=g).to(dtype) for _ in range(3))
    return jag, q, k, v


def time_shapes(tiles: Sequence[Any], launch: Callable[[Any], torch.Tensor], want: torch.Tensor, calls: int,
                rejected: list[str] | None) -> list[tuple[Any, float]]:
    """(tile, ms) of ``launch(tile)`` for each shape in ``tiles`` whose output is ``want`` within
    :data:`TUNE_TOLERANCE` of its largest value, in the order tried; any other shape (off, or one
    that does not compile or fit on this GPU) is skipped and said why in ``rejected``."""
    bound = TUNE_TOLERANCE * float(want.abs().max())
    timings = []
    for tile in tiles:
        try:
            got = launch(tile)
            torch.cuda.synchronize()
            off = float((got - want).abs().max())
            if not off <= bound:
                if rejected is not None:
                    rejected.append(f"{tile.text()}: output off by {off:.3g} (allowed {bound:.3g})")
                continue
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(calls):
                launch(tile)
            end.record()
            end.synchronize()
        except Exception as exc:  # out of shared memory or registers for this shape: not a candidate here
            torch.cuda.synchronize()
            if rejected is not None:
                rejected.append(f"{tile.text()}: {type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[-1][:200]}")
            continue
        timings.append((tile, start.elapsed_time(end) / calls))
    return timings


def tune(history: torch.Tensor, candidates: torch.Tensor, heads: int = 4, dim: int = 128, *, calls: int = 3,
         tiles: tuple[Tile, ...] = CANDIDATES, dtype: torch.dtype = torch.bfloat16,
         rejected: list[str] | None = None) -> list[tuple[Tile, float]]:
    """Time every tile shape in ``tiles`` on random q, k, v of jagged requests of these ``history``
    and ``candidates`` counts (CUDA), make the fastest :data:`TILE`, and return (tile, ms) for each
    that compiled and computed what the plain-load launch does (within :data:`TUNE_TOLERANCE` of its
    largest output), in the order tried. Any other shape is skipped, and said why in ``rejected``."""
    global TILE
    jag, q, k, v = tune_inputs(history, candidates, heads, dim, dtype)

    def launch(tile: Tile) -> torch.Tensor:
        return hstu_attention(q, k, v, jag.offsets, jag.history, jag.max_len, 0.1, jag.max_len, tile=tile)

    timings = time_shapes(tiles, launch, launch(Tile(rows_first=True)), calls, rejected)
    if timings:
        TILE = min(timings, key=lambda t: t[1])[0]
    return timings


#: dlrm-v3's ``--option attention_out``: the dtypes the Gluon attention may write its output in
#: (``use_fused_attention(attention_out=...)``): ``bf16`` (the default: rounded once from its fp32
#: sums, as the plain path's bf16 attention is; half the bytes for the kernel to write and the output
#: gate to read) or ``fp32``.
ATTENTION_OUT: dict[str, torch.dtype] = {"bf16": torch.bfloat16, "fp32": torch.float32}


def _wg_tile(qk_fp8: bool = False, v_fp8: bool = False) -> str:
    from suite.backends.kernels import hstu_wg

    return (hstu_wg.FP8V_WG_TILE if v_fp8 else hstu_wg.FP8_WG_TILE if qk_fp8 else hstu_wg.WG_TILE).text()


def use_fused_attention(model: torch.nn.Module, tune_tiles: bool = False, fp8: bool = False,
                        gluon: bool = False, projections: str = "bf16", qk_fp8: bool = False,
                        attention_out: str = "bf16", v_fp8: bool = False) -> torch.nn.Module:
    """Have every STU layer of a built dlrm-v3 call the fused kernel instead of the plain path;
    ``tune_tiles``: first time :data:`CANDIDATES` on eight MLPerf-size requests (6,750 events,
    2,048 candidates) and launch with the fastest; ``fp8``: both of the attention's products in
    fp8 e4m3 (:func:`hstu_attention`); ``gluon``: the attention through :mod:`suite.backends.kernels.hstu_wg`
    where it takes the tensors (its shapes are then what ``tune_tiles`` times, the fp8 ones with
    ``qk_fp8``); ``projections``:
    ``fp8`` or ``fp8-out`` runs the STU layers' products (both, or the output projection) in fp8
    e4m3 (:mod:`suite.models.dlrm_v3_fp8`, with this module's row kernels); ``qk_fp8`` (with
    ``gluon``): the Gluon kernel's scores from q and k in fp8 e4m3; ``attention_out`` (``bf16`` or
    ``fp32``): the dtype the Gluon kernel writes its output in (the output gate reads it and takes
    its layer norm in fp32 either way; the plain path's bf16 attention is bf16 too); ``v_fp8``
    (with ``qk_fp8``): ``p v`` in e4m3 too, v scaled by a bound from each layer's weights."""
    one_of("attention_out", attention_out, ATTENTION_OUT)
    v_fp8 = v_fp8 and qk_fp8  # v in e4m3 only beside q and k in e4m3
    attend = functools.partial(fused_jagged_attention, fp8=fp8, gluon=gluon, qk_fp8=qk_fp8 and gluon,
                               gluon_out=ATTENTION_OUT[attention_out])
    for layer in model.layers:  # type: ignore[union-attr]  # torch types a submodule as Tensor | Module; this is the dlrm-v3 model's ModuleList
        # fp8 keys scaled by a bound from the layer's weights: one pass over k, not two
        if qk_fp8 and gluon:
            v_scale = layer.value_bounds() / FP8_MAX if v_fp8 else None
            layer.attend = functools.partial(attend, k_scale=layer.key_bounds() / FP8_MAX, v_scale=v_scale)
        else:
            layer.attend = attend
        layer.norm_to = fused_norm_to
        layer.gate = fused_gate
        layer.residual_out = fused_residual_out
    model.rows_sum = fused_rows_sum
    if projections != "bf16":
        from suite.models.dlrm_v3_fp8 import use_fp8_projections

        use_fp8_projections(model, projections, norm=fused_norm_fp8, gate=fused_gate_fp8)
    tuned: dict[str, float] = {}
    rejected: list[str] = []
    if tune_tiles:
        n = 8
        if gluon:
            from suite.backends.kernels import hstu_wg

            timed: Sequence[tuple[Any, float]] = hstu_wg.tune(torch.full((n,), 6750), torch.full((n,), 2048), rejected=rejected,
                                                              qk_fp8=qk_fp8)
        else:
            timed = tune(torch.full((n,), 6750), torch.full((n,), 2048), rejected=rejected)
        tuned = {tile.text(): round(ms, 3) for tile, ms in timed}
    # What torch-cuda records; "ids": the model reads each table's ids apart, not one packed matrix.
    fp8_inputs = ", q, k and v in fp8 e4m3)" if v_fp8 else ", q and k in fp8 e4m3)" if qk_fp8 else ")"
    described = {"attention": ("gluon hstu_attention_wg (jagged, async products" + fp8_inputs
                               if gluon else
                               "triton hstu_attention (jagged" + (", fp8 e4m3 products)" if fp8 else ")")), "ids": "tables",
                 "tile": _wg_tile(qk_fp8, v_fp8) if gluon else (FP8_TILE if fp8 else TILE).text(),
                 "attention_out": attention_out if gluon else "fp32",
                 "row_kernels": "triton layer norm, output gate and token sums; the residual add in the output projection"
                 if projections == "bf16" else "triton layer norm and output gate quantizing each row to fp8 e4m3, token sums",
                 "projections": {"bf16": "bf16", "fp8": "fp8 e4m3, row-wise scales: uvqk and the output projection",
                                 "fp8-out": "fp8 e4m3, row-wise scales: the output projection; uvqk bf16"}[projections],
                 **({"tuned_ms": tuned} if tuned else {}), **({"tune_rejected": rejected} if rejected else {})}
    model.describe = lambda: described
    return model
