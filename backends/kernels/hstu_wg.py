"""HSTU's SiLU attention for Hopper, written in Gluon: the products issued asynchronously, so that
the SiLU of one block of scores runs on the multi-function units while the tensor cores work.

:mod:`suite.backends.kernels.hstu`'s Triton kernel computes the same thing (and is what the tests
under Triton's interpreter check; this kernel has no interpreter). Compiled by Triton 3.6 for sm_90
that kernel waits for each product right after issuing it, so a program's tensor cores sit idle
while it takes the hardware tanh of the scores (one ``MUFU.TANH`` an element: a quarter of the
time the two products of that element take on the tensor cores). Gluon, Triton's lower-level
language, places the waits where the kernel says. :attr:`WgTile.order` picks where:

- 0: as the Triton kernel (the scores, waited for; their SiLU; ``p v`` left running);
- 1: the next block's scores issued before this block's SiLU, ``p v`` after it;
- 2 (FlashAttention-3's order): both products issued (the next block's scores, then this block's
  ``p v``), the wait for the scores only, the next block's SiLU while ``p v`` runs, then the wait
  for ``p v``, whose registers the next p then takes.

Keys and values arrive through tensor descriptors (TMA) into a ring of ``stages`` shared-memory
slots with one barrier each. The blocks a program walks are the Triton kernel's: the history's
columns (unmasked up to the block's first row, then the masked tail) and for candidate rows the
diagonal of their own keys.

:attr:`WgTile.specialized` (the default since session 23) splits a program's warps by task, as
FlashAttention-3 does: one producer warp issues every copy and waits for free slots; each 64 rows
is a consumer warpgroup of its own (order 2) that releases a slot by an arrival on its barrier, so
the consumers of a 128-row block share each block of keys and values (half the L2 traffic of 64-row
blocks) without stepping together. Consumers get 240 registers a thread, the producer 24.
:attr:`WgTile.pingpong` makes the two take turns to issue their products. On an H200 (8
MLPerf-size requests) 128 rows specialized took 0.977 ms, 64 x 64 order 2 unspecialized 1.042,
order 0 1.081, order 1 1.309, against 1.111 for the Triton kernel (docs/dlrm-v3.md).

bf16 inputs (the interpreter and the all-fp8 path keep the Triton kernel), q, k and v with their
last dimension contiguous and 16-byte-aligned rows, heads of 128, an sm_90 GPU (:func:`supported`).
With ``qk_fp8`` the specialized kernel takes its scores from 8-bit products of q and k in e4m3: q
read in bf16 and quantized by the consumers, k quantized by one pass before the launch
(``--option attention=qk-fp8``, what ``auto`` runs on sm_90: the kernel 1.26x faster on an H200, and
with the passes gone 0.865 ms against 0.944 for bf16's on 8 MLPerf-size requests; docs/dlrm-v3.md).
With ``v_scale`` as well, ``p v`` takes e4m3 operands too (``--option attention=qkv-fp8``): v^T made
by one pass in an order that lets p be cast in registers without moving a value between threads.
Over 450 lines because it holds both kernels (unspecialized and specialized), which share their
block walk and SiLU, and the launch and tune code that picks between them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import triton
from triton.experimental import gluon
from triton.experimental.gluon import language as gl
from triton.experimental.gluon.language.nvidia.hopper import fence_async_shared, mbarrier, tma, warpgroup_mma, warpgroup_mma_init, warpgroup_mma_wait

from suite.backends.kernels import hstu

# The TMA copies: Triton 3.6 (the H200's) names them async_copy_*, later versions async_load and async_store.
_tma_load = getattr(tma, "async_load", None) or tma.async_copy_global_to_shared
_tma_store = getattr(tma, "async_store", None) or tma.async_copy_shared_to_global
#: Whether shared memory is viewed as another type by ``reinterpret`` (later versions) or ``_reinterpret`` (3.6).
_REINTERPRET: gl.constexpr = gl.constexpr(hasattr(gl.shared_memory_descriptor, "reinterpret"))


@dataclass(frozen=True)
class WgTile:
    """The Gluon kernel's launch shape: query rows (64 a warpgroup), key columns a step, slots, the
    order of the waits, and whether warps are specialized (a producer warp and a consumer warpgroup
    for each 64 rows: see the module)."""

    block_m: int = 64
    block_n: int = 64
    stages: int = 3
    #: Where the waits go: 0 as the Triton kernel (scores, wait, SiLU, p v left running), 1 the next
    #: block's scores issued before this block's SiLU, 2 FlashAttention-3's (both products issued,
    #: the next SiLU beside p v). See the module. Specialized shapes take 2.
    order: int = 2
    #: A producer warp issues the copies; each 64 rows is a consumer warpgroup of its own.
    specialized: bool = False
    #: With two consumers: they take turns issuing their products (FlashAttention-3's ping-pong).
    pingpong: bool = False

    def __post_init__(self) -> None:
        if self.specialized and (self.order != 2 or self.block_m not in (64, 128)):
            raise ValueError(f"specialized warps take order 2 and 64 or 128 rows (got {self.text()})")
        if self.pingpong and not (self.specialized and self.block_m == 128):
            raise ValueError(f"the ping-pong takes two consumers: specialized, 128 rows (got {self.text()})")

    @property
    def num_warps(self) -> int:
        return 4 if self.specialized else self.block_m // 16

    @property
    def maxnreg(self) -> int | None:
        """The registers a thread before the partitions reallocate them: the register file over the
        block's warps (12 for two consumers, 8 for one: the producer's warp counts as a warpgroup)."""
        if not self.specialized:
            return None
        return 168 if self.block_m == 128 else 128

    def text(self) -> str:
        """As results record it: ``wg MxN sS oO`` (rows x key columns, slots, order), then ``ws``
        for specialized warps and ``pp`` for the ping-pong."""
        return f"wg {self.block_m}x{self.block_n} s{self.stages} o{self.order}" + (" ws" if self.specialized else "") + (
            " pp" if self.pingpong else "")


#: The default launch shape: the fastest on an H200 (Triton 3.6), 8 MLPerf-size requests, bf16: 128 rows
#: with specialized warps, two consumers free of each other, 0.977 ms (590 TFLOP/s on the FLOPs the mask
#: keeps), against 1.042 for 64 x 64 order 2 unspecialized (the default before), 1.002 with the two in
#: turns, 0.987 for one consumer of 64 rows and 1.111 for the Triton kernel's default
#: (benchmarks/results/gpu_server_h200_s23/c2; c1 the same order). :func:`tune` replaces it.
WG_TILE = WgTile(128, 64, 4, 2, True)
#: The shape ``qk_fp8`` launches with unless given one: one consumer of 64 rows, the fastest with q
#: and k in fp8 on an H200 (0.925 ms for 8 MLPerf-size requests, quantizing included, against 0.950
#: for the two consumers of WG_TILE and 1.002 for WG_TILE in bf16; benchmarks/results/gpu_server_h200_s24/c4).
FP8_WG_TILE = WgTile(64, 64, 3, 2, True)
#: The shape ``v_scale`` (v in e4m3 too) launches with: one consumer of 64 rows, four slots, the
#: fastest of those timed on an H200 (8 MLPerf-size requests: 0.766 ms against 0.842 for qk_fp8's
#: default in the same call; benchmarks/results/gpu_server_h200_s28/v8p). Two consumers are not
#: offered: their producer is held to 24 registers, too few for v^T's copy (see _hstu_ws_fwd).
FP8V_WG_TILE = WgTile(64, 64, 4, 2, True)
#: What :func:`tune` times for ``qk_fp8`` (``--option attention=qk-fp8 tune=1``) and
#: ``benchmarks/hstu_gpu.py --qk-fp8`` times: the specialized shapes, and four slots for one consumer
#: (8-bit keys leave room). On an H200 (8 MLPerf-size requests, quantizing included;
#: benchmarks/results/gpu_server_h200_s25/c1) 64 x 64 with four slots took 0.956 ms, with three 0.993,
#: 128 x 64 0.984, in turns 1.054; 128 key columns a step were slower (1.005 ms for 128 rows, 1.311 for
#: 64) and spill in the every-row form: left out.
FP8_CANDIDATES = (WgTile(64, 64, 3, 2, True), WgTile(64, 64, 4, 2, True), WgTile(128, 64, 4, 2, True),
                  WgTile(128, 64, 4, 2, True, True))
#: What :func:`tune` and ``benchmarks/hstu_gpu.py --tiles --gluon`` time: the unspecialized orders
#: (0 and 1 for comparison), then the specialized shapes. 128 key columns a step were slower (1.000 ms
#: with three slots, 1.49 to 1.54 with two) and spill a few bytes in the every-row form: left out.
WG_CANDIDATES = (WgTile(64, 64, 3, 2), WgTile(64, 64, 3, 0), WgTile(64, 64, 3, 1), WgTile(64, 32, 3, 2),
                 WgTile(64, 64, 3, 2, True), WgTile(128, 64, 4, 2, True), WgTile(128, 64, 4, 2, True, True))


@gluon.jit
def _silu_half(s, c):
    # silu(2 c s) = h (1 + tanh h) with h = c s; tanh one hardware instruction.
    h = s * c
    t = gl.inline_asm_elementwise("tanh.approx.f32 $0, $1;", "=f,f", [h], dtype=gl.float32, is_pure=True, pack=1)
    return h + h * t


@gluon.jit
def _issue(kv_desc_k, kv_desc_v, kv, bars, j, n_hist, own, STAGES: gl.constexpr, BLOCK_N: gl.constexpr,
           pred):
    # Start the copy of block j's keys and values into slot j % STAGES (nothing where pred is false).
    slot = j % STAGES
    c = gl.where(j < n_hist, j * BLOCK_N, own + (j - n_hist) * BLOCK_N).to(gl.int32)
    bar = bars.index(slot)
    mbarrier.expect(bar, 2 * kv_desc_k.block_type.nbytes, pred=pred)
    _tma_load(kv_desc_k, [c, 0], bar, kv.index(2 * slot), pred=pred)
    _tma_load(kv_desc_v, [c, 0], bar, kv.index(2 * slot + 1), pred=pred)


@gluon.jit
def _p_of(s, j, half_alpha, n_full, n_hist, own, own_c, end, last, hist, rows, row_id, cols0, BLOCK_N: gl.constexpr):
    # Block j's SiLU of its scores s, masked in the history's tail and on the own keys' diagonal.
    # The own keys' blocks start at column own_c (own, or below it: see _walk); the mask keeps own.
    y = _silu_half(s, half_alpha)
    if j >= n_full:
        in_hist = j < n_hist
        c = gl.where(in_hist, j * BLOCK_N, own_c + (j - n_hist) * BLOCK_N)
        lo_c = gl.where(in_hist, 0, own)
        hi_c = gl.where(in_hist, end, last + 1)
        cols = c + cols0
        col_id = gl.minimum(cols, hist + 1)
        seen = (row_id[:, None] > col_id[None, :]) | (rows[:, None] == cols[None, :])
        seen = seen | ((rows[:, None] == 0) & (cols[None, :] <= hist))
        seen = seen & (cols[None, :] >= lo_c) & (cols[None, :] < hi_c)
        y = gl.where(seen, y, 0.0)
    return y


@gluon.jit
def _p_e4m3(y, p_layout: gl.constexpr):
    # p (64, BLOCK_N) fp32 in the scores' layout as the e4m3 left operand of p v, without moving a
    # value: within each 32 columns, operand column m is taken to be score column pi(m) (the bits
    # of m: c0 = m0, c1 = m2, c2 = m3, c3 = m1), the value a thread already holds there, so the
    # layout change is a relabeling (checked: assert_trivial); v^T's tokens are stored in the
    # same order (hstu.quantize_v_columns). Four values of a row a register: two conversions to
    # e4m3 pairs, joined.
    R: gl.constexpr = y.shape[0]
    N: gl.constexpr = y.shape[1]
    y = gl.reshape(gl.permute(gl.reshape(y, [R, N // 32, 2, 2, 2, 2, 2]), (0, 1, 2, 4, 5, 3, 6)), [R, N])
    y = gl.convert_layout(y, p_layout, assert_trivial=True)
    return gl.inline_asm_elementwise(
        "{ .reg .b16 lo, hi; cvt.rn.satfinite.e4m3x2.f32 lo, $2, $1; cvt.rn.satfinite.e4m3x2.f32 hi, $4, $3; "
        "mov.b32 $0, {lo, hi}; }", "=r,f,f,f,f", [y], dtype=gl.float8e4nv, is_pure=True, pack=4)


@gluon.jit
def _walk(offsets_ptr, q_offsets_ptr, history_ptr, HEADS: gl.constexpr, BLOCK_M: gl.constexpr,
          BLOCK_N: gl.constexpr, CANDIDATES: gl.constexpr, OWN_ALIGN: gl.constexpr):
    # This program's (request, head), its block of query rows and the blocks of keys it walks, for
    # both kernels. Grid: axis 0 the row blocks (last first: the candidate blocks are the longest),
    # axis 1 the (request, head) pairs, as the Triton kernel's rows-first launch. The own keys'
    # blocks start at own_c: own rounded down to a multiple of OWN_ALIGN (v in e4m3 reads its blocks
    # from chunks of 32 columns; the mask still starts at own).
    block = gl.program_id(0)
    pid = gl.program_id(1)
    b = pid // HEADS
    start = gl.load(offsets_ptr + b)  # int64: kept so for the addresses; counts below in int32
    n = (gl.load(offsets_ptr + b + 1) - start).to(gl.int32)
    hist = gl.load(history_ptr + b).to(gl.int32)
    q_start = gl.load(q_offsets_ptr + b)
    q_n = (gl.load(q_offsets_ptr + b + 1) - q_start).to(gl.int32)
    lo = (gl.num_programs(0) - 1 - block) * BLOCK_M
    first = hist + 1 if CANDIDATES else 0  # the request's row of query 0
    lo_row = first + lo
    last = first + gl.minimum(lo + BLOCK_M, q_n) - 1  # the block's last real row
    end = gl.where((lo_row == 0) | (last > hist), hist + 1, last + 1)
    n_hist = gl.cdiv(end, BLOCK_N)
    own = gl.maximum(lo_row, hist + 1)  # a candidate row's own key: from here to ``last``
    own_c = own // OWN_ALIGN * OWN_ALIGN
    n_own = gl.where(last >= own, gl.cdiv(last + 1 - own_c, BLOCK_N), 0)
    return pid % HEADS, start, n, hist, q_start, q_n, lo, lo_row, last, end, n_hist, own, n_hist + n_own, own_c


@gluon.jit
def _full_blocks(row, hist, BLOCK_N: gl.constexpr):
    # Blocks of columns that every row from ``row`` on sees (no mask): below the row for history
    # rows, the whole history for candidate rows, none for the block holding the user row.
    return gl.where(row == 0, 0, gl.where(row > hist, hist + 1, row)) // BLOCK_N


@gluon.jit
def _hstu_wg_fwd(q_ptr, k_ptr, v_ptr, o_ptr, offsets_ptr, q_offsets_ptr, history_ptr, half_alpha, inv_scale,
                 s_qt, s_kt, s_vt, s_ot, HEADS: gl.constexpr, D: gl.constexpr, BLOCK_M: gl.constexpr,
                 BLOCK_N: gl.constexpr, STAGES: gl.constexpr, CANDIDATES: gl.constexpr, ORDER: gl.constexpr,
                 num_warps: gl.constexpr):
    head, start, n, hist, q_start, q_n, lo, lo_row, last, end, n_hist, own, nb, _ = _walk(
        offsets_ptr, q_offsets_ptr, history_ptr, HEADS, BLOCK_M, BLOCK_N, CANDIDATES, 1)
    if lo < q_n:
        s_layout: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[num_warps, 1],
                                                           instr_shape=[16, BLOCK_N, 16])
        o_layout: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[num_warps, 1],
                                                           instr_shape=[16, D, 16])
        p_layout: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=o_layout, k_width=2)
        q_smem_layout: gl.constexpr = gl.NVMMASharedLayout.get_default_for([BLOCK_M, D], gl.bfloat16)
        kv_smem_layout: gl.constexpr = gl.NVMMASharedLayout.get_default_for([BLOCK_N, D], gl.bfloat16)
        o_type: gl.constexpr = o_ptr.dtype.element_ty
        o_smem_layout: gl.constexpr = gl.NVMMASharedLayout.get_default_for([BLOCK_M, D], o_type)
        n_full = _full_blocks(lo_row, hist, BLOCK_N)

        q_desc = tma.make_tensor_descriptor(q_ptr + head * D + q_start * s_qt, shape=[q_n, D],
                                            strides=[s_qt, 1], block_shape=[BLOCK_M, D], layout=q_smem_layout)
        k_desc = tma.make_tensor_descriptor(k_ptr + head * D + start * s_kt, shape=[n, D],
                                            strides=[s_kt, 1], block_shape=[BLOCK_N, D], layout=kv_smem_layout)
        v_desc = tma.make_tensor_descriptor(v_ptr + head * D + start * s_vt, shape=[n, D],
                                            strides=[s_vt, 1], block_shape=[BLOCK_N, D], layout=kv_smem_layout)

        q_smem = gl.allocate_shared_memory(gl.bfloat16, [BLOCK_M, D], q_smem_layout)
        kv = gl.allocate_shared_memory(gl.bfloat16, [2 * STAGES, BLOCK_N, D], kv_smem_layout)
        bars = gl.allocate_shared_memory(gl.int64, [STAGES + 1, 1], mbarrier.MBarrierLayout())
        for i in gl.static_range(STAGES + 1):
            mbarrier.init(bars.index(i), count=1)
        q_bar = bars.index(STAGES)
        mbarrier.expect(q_bar, q_desc.block_type.nbytes)
        _tma_load(q_desc, [lo.to(gl.int32), 0], q_bar, q_smem)
        for i in gl.static_range(STAGES - 1 if ORDER < 2 else STAGES):
            _issue(k_desc, v_desc, kv, bars, i, n_hist, own, STAGES, BLOCK_N, i < nb)

        rows = lo_row + gl.arange(0, BLOCK_M, layout=gl.SliceLayout(1, s_layout))
        row_id = gl.minimum(rows, hist + 1)
        cols0 = gl.arange(0, BLOCK_N, layout=gl.SliceLayout(0, s_layout))
        zero_s = gl.zeros([BLOCK_M, BLOCK_N], gl.float32, s_layout)

        mbarrier.wait(q_bar, 0)
        mbarrier.wait(bars.index(0), 0, pred=nb > 0)
        acc = gl.zeros([BLOCK_M, D], gl.float32, o_layout)
        if ORDER < 2:  # the loop ends with p v running
            acc = warpgroup_mma_init(acc)
        if ORDER == 0:  # as the Triton kernel: the scores, waited for; their SiLU; p v, left running
            for j in range(0, nb):
                slot = j % STAGES
                mbarrier.wait(bars.index(slot), (j // STAGES) & 1, pred=j > 0)
                s = warpgroup_mma(q_smem, kv.index(2 * slot).permute((1, 0)), zero_s, use_acc=False, is_async=True)
                s, acc = warpgroup_mma_wait(0, deps=[s, acc])
                y = _p_of(s, j, half_alpha, n_full, n_hist, own, own, end, last, hist, rows, row_id, cols0, BLOCK_N)
                p = gl.convert_layout(y.to(gl.bfloat16), p_layout)
                acc = warpgroup_mma(p, kv.index(2 * slot + 1), acc, is_async=True)
                _issue(k_desc, v_desc, kv, bars, j + STAGES - 1, n_hist, own, STAGES, BLOCK_N, j + STAGES - 1 < nb)
        elif ORDER == 1:  # the next scores issued before this block's SiLU
            s = warpgroup_mma(q_smem, kv.index(0).permute((1, 0)), zero_s, use_acc=False, is_async=True)
            s = warpgroup_mma_wait(0, deps=[s])
            p = gl.zeros([BLOCK_M, BLOCK_N], gl.bfloat16, p_layout)
            for j in range(0, nb):
                # 1. The next block's scores (a stale slot on the last step: computed, never read).
                nxt = (j + 1) % STAGES
                mbarrier.wait(bars.index(nxt), ((j + 1) // STAGES) & 1, pred=j + 1 < nb)
                s_next = warpgroup_mma(q_smem, kv.index(2 * nxt).permute((1, 0)), zero_s, use_acc=False, is_async=True)
                # 2. This block's SiLU, masked in the tail and on the own keys' diagonal.
                y = _p_of(s, j, half_alpha, n_full, n_hist, own, own, end, last, hist, rows, row_id, cols0, BLOCK_N)
                # 3. The previous p v is done with p's registers: the next p, then its product.
                acc, p = warpgroup_mma_wait(1, deps=[acc, p])
                p = gl.convert_layout(y.to(gl.bfloat16), p_layout)
                acc = warpgroup_mma(p, kv.index(2 * (j % STAGES) + 1), acc, is_async=True)
                # 4. The next scores; block j - 1's slot is free: copy block j - 1 + STAGES into it.
                s = warpgroup_mma_wait(1, deps=[s_next])
                _issue(k_desc, v_desc, kv, bars, j + STAGES - 1, n_hist, own, STAGES, BLOCK_N, j + STAGES - 1 < nb)
        else:  # FlashAttention-3's order: both products issued, then the next SiLU beside p v
            s = warpgroup_mma(q_smem, kv.index(0).permute((1, 0)), zero_s, use_acc=False, is_async=True)
            s = warpgroup_mma_wait(0, deps=[s])
            y = _p_of(s, 0, half_alpha, n_full, n_hist, own, own, end, last, hist, rows, row_id, cols0, BLOCK_N)
            p = gl.convert_layout(y.to(gl.bfloat16), p_layout)
            for j in range(0, nb):
                nxt = (j + 1) % STAGES
                mbarrier.wait(bars.index(nxt), ((j + 1) // STAGES) & 1, pred=j + 1 < nb)
                s_next = warpgroup_mma(q_smem, kv.index(2 * nxt).permute((1, 0)), zero_s, use_acc=False, is_async=True)
                acc = warpgroup_mma(p, kv.index(2 * (j % STAGES) + 1), acc, is_async=True)
                s = warpgroup_mma_wait(1, deps=[s_next])
                y = _p_of(s, j + 1, half_alpha, n_full, n_hist, own, own, end, last, hist, rows, row_id, cols0, BLOCK_N)
                acc, p = warpgroup_mma_wait(0, deps=[acc, p])
                p = gl.convert_layout(y.to(gl.bfloat16), p_layout)
                # block j's slot is free: copy block j + STAGES into it
                _issue(k_desc, v_desc, kv, bars, j + STAGES, n_hist, own, STAGES, BLOCK_N, j + STAGES < nb)
        acc = warpgroup_mma_wait(0, deps=[acc])
        for i in gl.static_range(STAGES + 1):
            mbarrier.invalidate(bars.index(i))
        out = acc * inv_scale
        o_desc = tma.make_tensor_descriptor(o_ptr + head * D + q_start * s_ot, shape=[q_n, D],
                                            strides=[s_ot, 1], block_shape=[BLOCK_M, D], layout=o_smem_layout)
        if _REINTERPRET:  # the output through the slots' memory, free now
            o_smem = kv.reinterpret(o_type, [BLOCK_M, D], o_smem_layout)
        else:
            o_smem = kv._reinterpret(o_type, [BLOCK_M, D], o_smem_layout)
        o_smem.store(out.to(o_type))
        fence_async_shared()
        _tma_store(o_desc, [lo.to(gl.int32), 0], o_smem)
        tma.store_wait(pendings=0)


@gluon.jit
def _ws_producer(q_desc, k_desc, v_desc, q_smem, k_ring, v_ring, ready, empty, q_bars, lo, nb, n_hist, own_c, v_col,
                 STAGES: gl.constexpr, BLOCK_N: gl.constexpr, CONSUMERS: gl.constexpr, FP8_V: gl.constexpr):
    # One warp: q's halves, then every block's keys and values into the rings as slots free up.
    # FP8_V: v's block is a (D, BLOCK_N) box of v^T, from the request's first column v_col.
    for h in gl.static_range(CONSUMERS):
        mbarrier.expect(q_bars.index(h), q_desc.block_type.nbytes)
        _tma_load(q_desc, [lo + h * 64, 0], q_bars.index(h), q_smem.index(h))
    for j in range(0, nb):
        slot = j % STAGES
        mbarrier.wait(empty.index(slot), ((j // STAGES) & 1) ^ 1)
        c = gl.where(j < n_hist, j * BLOCK_N, own_c + (j - n_hist) * BLOCK_N).to(gl.int32)
        bar = ready.index(slot)
        mbarrier.expect(bar, k_desc.block_type.nbytes + v_desc.block_type.nbytes)
        _tma_load(k_desc, [c, 0], bar, k_ring.index(slot))
        if FP8_V:
            _tma_load(v_desc, [0, v_col + c], bar, v_ring.index(slot))
        else:
            _tma_load(v_desc, [c, 0], bar, v_ring.index(slot))


@gluon.jit
def _ws_consumer(o_ptr, s_ot, q_smem, k_ring, v_ring, ready, empty, q_bars, turn, half_alpha, inv_scale, sq_ptr, sk_ptr,
                 lo, lo_row, q_n, nb, n_hist, own, own_c, end, last, hist, v_scale, H: gl.constexpr, D: gl.constexpr,
                 BLOCK_N: gl.constexpr, STAGES: gl.constexpr, PINGPONG: gl.constexpr, FP8: gl.constexpr,
                 QUANT_Q: gl.constexpr, FP8_V: gl.constexpr):
    # One warpgroup: rows H * 64 to H * 64 + 63 of the block, in order 2. With PINGPONG the two
    # consumers take turns to issue their products (consumer 0 first): each waits for its turn,
    # issues, then hands the turn over, so that one's SiLU runs beside the other's products. FP8: q
    # and k in e4m3, each row of scores scaled by its query's scale (sq_ptr: this head's, from the
    # request's first query) times the request's keys' one (at sk_ptr) with alpha; p v stays bf16.
    # QUANT_Q (with FP8): q's block comes in bf16 and is quantized here, each row by its largest
    # magnitude over 448 (quantize_heads' scales), into registers, the scores' left operand.
    # FP8_V (with FP8): p v in e4m3 too, v's blocks (D, BLOCK_N) of v^T scaled by v_scale, p
    # cast as it is issued (_p_e4m3): a p kept across the loop in 8 bits is split into bytes and
    # joined again, a hundred instructions a block.
    s_layout: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1],
                                                       instr_shape=[16, BLOCK_N, 32 if FP8 else 16])
    o_layout: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1],
                                                       instr_shape=[16, D, 32 if FP8_V else 16])
    p_layout: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=o_layout, k_width=4 if FP8_V else 2)
    my_row = lo_row + H * 64
    n_full = _full_blocks(my_row, hist, BLOCK_N)
    rows = my_row + gl.arange(0, 64, layout=gl.SliceLayout(1, s_layout))
    row_id = gl.minimum(rows, hist + 1)
    cols0 = gl.arange(0, BLOCK_N, layout=gl.SliceLayout(0, s_layout))
    zero_s = gl.zeros([64, BLOCK_N], gl.float32, s_layout)
    acc = gl.zeros([64, D], gl.float32, o_layout)
    if FP8 and QUANT_Q:  # q's block in bf16: each row to e4m3 by its own scale, held in registers
        mbarrier.wait(q_bars.index(H), 0)
        qa_layout: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=s_layout, k_width=4)
        qf = q_smem.index(H).load(qa_layout).to(gl.float32)
        q_scale = gl.maximum(gl.max(gl.abs(qf), axis=1) / 448.0, 1e-30)
        q = gl.minimum(gl.maximum(qf / gl.expand_dims(q_scale, 1), -448.0), 448.0).to(gl.float8e4nv)
        row_c = gl.expand_dims(gl.convert_layout(q_scale, gl.SliceLayout(1, s_layout)) * (half_alpha * gl.load(sk_ptr)), 1)
    else:
        q = q_smem.index(H)
        if FP8:  # half alpha times each row's scale and the keys' scale
            q_rows = lo + H * 64 + gl.arange(0, 64, layout=gl.SliceLayout(1, s_layout))
            row_c = gl.expand_dims(gl.load(sq_ptr + q_rows, mask=q_rows < q_n, other=0.0) * (half_alpha * gl.load(sk_ptr)), 1)
        else:
            row_c = half_alpha
        mbarrier.wait(q_bars.index(H), 0)
    if nb > 0:
        mbarrier.wait(ready.index(0), 0)
        s = warpgroup_mma(q, k_ring.index(0).permute((1, 0)), zero_s, use_acc=False, is_async=True)
        s = warpgroup_mma_wait(0, deps=[s])
        y = _p_of(s, 0, row_c, n_full, n_hist, own, own_c, end, last, hist, rows, row_id, cols0, BLOCK_N)
        if FP8_V:
            p = y
        else:
            p = gl.convert_layout(y.to(gl.bfloat16), p_layout)
        for j in range(0, nb):
            nxt = (j + 1) % STAGES
            mbarrier.wait(ready.index(nxt), ((j + 1) // STAGES) & 1, pred=j + 1 < nb)
            if PINGPONG:
                mbarrier.wait(turn.index(H), (j & 1) ^ (1 - H))
            s_next = warpgroup_mma(q, k_ring.index(nxt).permute((1, 0)), zero_s, use_acc=False, is_async=True)
            if FP8_V:
                acc = warpgroup_mma(_p_e4m3(p, p_layout), v_ring.index(j % STAGES).permute((1, 0)), acc, is_async=True)
            else:
                acc = warpgroup_mma(p, v_ring.index(j % STAGES), acc, is_async=True)
            if PINGPONG:
                mbarrier.arrive(turn.index(1 - H), count=1)
            s = warpgroup_mma_wait(1, deps=[s_next])
            y = _p_of(s, j + 1, row_c, n_full, n_hist, own, own_c, end, last, hist, rows, row_id, cols0, BLOCK_N)
            if FP8_V:
                acc = warpgroup_mma_wait(0, deps=[acc])
                mbarrier.arrive(empty.index(j % STAGES), count=1)
                p = y
            else:
                acc, p = warpgroup_mma_wait(0, deps=[acc, p])
                mbarrier.arrive(empty.index(j % STAGES), count=1)
                p = gl.convert_layout(y.to(gl.bfloat16), p_layout)
    out = acc * (inv_scale * v_scale)
    o_rows = lo + H * 64 + gl.arange(0, 64, layout=gl.SliceLayout(1, o_layout))
    o_cols = gl.arange(0, D, layout=gl.SliceLayout(0, o_layout))
    gl.store(o_ptr + o_rows[:, None].to(gl.int64) * s_ot + o_cols[None, :], out.to(o_ptr.dtype.element_ty),
             mask=(o_rows < q_n)[:, None])


@gluon.jit
def _hstu_ws_fwd(q_ptr, k_ptr, v_ptr, o_ptr, offsets_ptr, q_offsets_ptr, history_ptr, half_alpha, inv_scale,
                 s_qt, s_kt, s_vt, s_ot, sq_ptr, sk_ptr, s_sq, s_sk, sv_ptr, v_columns_ptr, HEADS: gl.constexpr,
                 D: gl.constexpr, BLOCK_N: gl.constexpr, STAGES: gl.constexpr, CONSUMERS: gl.constexpr,
                 CANDIDATES: gl.constexpr, PINGPONG: gl.constexpr, FP8: gl.constexpr, QUANT_Q: gl.constexpr,
                 CONSUMER_REGS: gl.constexpr, FP8_V: gl.constexpr, num_warps: gl.constexpr):
    # The specialized kernel: the block walk of _hstu_wg_fwd, a producer warp filling the rings and
    # CONSUMERS warpgroups of 64 rows each reading them; a slot is free once every consumer is done.
    # FP8: k in e4m3 (its type) with its scales (heads, requests) at sk_ptr; q in e4m3 too with its
    # scales (heads, tokens) at sq_ptr, or in bf16, quantized by the consumers. FP8_V: v is v^T
    # (heads, D, s_vt) in e4m3 (hstu.quantize_v_columns: request b from column v_columns_ptr[b]),
    # with one scale a head at sv_ptr; the own keys' blocks then start on a chunk of 32 columns.
    BLOCK_M: gl.constexpr = 64 * CONSUMERS
    head, start, n, hist, q_start, q_n, lo, lo_row, last, end, n_hist, own, nb, own_c = _walk(
        offsets_ptr, q_offsets_ptr, history_ptr, HEADS, BLOCK_M, BLOCK_N, CANDIDATES, 32 if FP8_V else 1)
    if lo < q_n:
        q_type: gl.constexpr = q_ptr.dtype.element_ty
        k_type: gl.constexpr = k_ptr.dtype.element_ty
        v_type: gl.constexpr = v_ptr.dtype.element_ty
        v_box: gl.constexpr = [D, BLOCK_N] if FP8_V else [BLOCK_N, D]
        q_smem_layout: gl.constexpr = gl.NVMMASharedLayout.get_default_for([64, D], q_type)
        k_smem_layout: gl.constexpr = gl.NVMMASharedLayout.get_default_for([BLOCK_N, D], k_type)
        v_smem_layout: gl.constexpr = gl.NVMMASharedLayout.get_default_for(v_box, v_type)
        q_desc = tma.make_tensor_descriptor(q_ptr + head * D + q_start * s_qt, shape=[q_n, D],
                                            strides=[s_qt, 1], block_shape=[64, D], layout=q_smem_layout)
        k_desc = tma.make_tensor_descriptor(k_ptr + head * D + start * s_kt, shape=[n, D],
                                            strides=[s_kt, 1], block_shape=[BLOCK_N, D], layout=k_smem_layout)
        if FP8_V:
            v_desc = tma.make_tensor_descriptor(v_ptr + head * D * s_vt, shape=[D, s_vt], strides=[s_vt, 1],
                                                block_shape=v_box, layout=v_smem_layout)
            v_col = gl.load(v_columns_ptr + gl.program_id(1) // HEADS).to(gl.int32)
            v_scale = gl.load(sv_ptr + head)
        else:
            v_desc = tma.make_tensor_descriptor(v_ptr + head * D + start * s_vt, shape=[n, D],
                                                strides=[s_vt, 1], block_shape=v_box, layout=v_smem_layout)
            v_col = 0
            v_scale = 1.0
        q_smem = gl.allocate_shared_memory(q_type, [CONSUMERS, 64, D], q_smem_layout)
        k_ring = gl.allocate_shared_memory(k_type, [STAGES, BLOCK_N, D], k_smem_layout)
        v_ring = gl.allocate_shared_memory(v_type, [STAGES] + v_box, v_smem_layout)
        ready = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
        empty = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
        q_bars = gl.allocate_shared_memory(gl.int64, [CONSUMERS, 1], mbarrier.MBarrierLayout())
        turn = gl.allocate_shared_memory(gl.int64, [2, 1], mbarrier.MBarrierLayout())
        for i in gl.static_range(STAGES):
            mbarrier.init(ready.index(i), count=1)
            mbarrier.init(empty.index(i), count=CONSUMERS)
        for i in gl.static_range(CONSUMERS):
            mbarrier.init(q_bars.index(i), count=1)
            mbarrier.init(turn.index(i), count=1)
        o_base = o_ptr + head * D + q_start * s_ot
        sq = sq_ptr + head * s_sq + q_start
        sk = sk_ptr + head * s_sk + gl.program_id(1) // HEADS
        if CONSUMERS == 2:
            gl.warp_specialize([
                (_ws_consumer, (o_base, s_ot, q_smem, k_ring, v_ring, ready, empty, q_bars, turn, half_alpha, inv_scale, sq,
                                sk, lo, lo_row, q_n, nb, n_hist, own, own_c, end, last, hist, v_scale, 0, D, BLOCK_N,
                                STAGES, PINGPONG, FP8, QUANT_Q, FP8_V)),
                (_ws_consumer, (o_base, s_ot, q_smem, k_ring, v_ring, ready, empty, q_bars, turn, half_alpha, inv_scale, sq,
                                sk, lo, lo_row, q_n, nb, n_hist, own, own_c, end, last, hist, v_scale, 1, D, BLOCK_N,
                                STAGES, PINGPONG, FP8, QUANT_Q, FP8_V)),
                (_ws_producer, (q_desc, k_desc, v_desc, q_smem, k_ring, v_ring, ready, empty, q_bars, lo, nb, n_hist, own_c,
                                v_col, STAGES, BLOCK_N, CONSUMERS, FP8_V)),
            ], [4, 1], [CONSUMER_REGS, 24])
        else:
            # With v^T's copy the producer needs more than 24 registers: on the H200 a producer held
            # to 24 died with an illegal instruction at that copy (sessions 25 to 27). With 40, 56
            # or 88 it runs; FP8V_WG_TILE was timed with 88 (docs/dlrm-v3.md).
            gl.warp_specialize([
                (_ws_consumer, (o_base, s_ot, q_smem, k_ring, v_ring, ready, empty, q_bars, turn, half_alpha, inv_scale, sq,
                                sk, lo, lo_row, q_n, nb, n_hist, own, own_c, end, last, hist, v_scale, 0, D, BLOCK_N,
                                STAGES, PINGPONG, FP8, QUANT_Q, FP8_V)),
                (_ws_producer, (q_desc, k_desc, v_desc, q_smem, k_ring, v_ring, ready, empty, q_bars, lo, nb, n_hist, own_c,
                                v_col, STAGES, BLOCK_N, CONSUMERS, FP8_V)),
            ], [1], [88 if FP8_V else 24])


def supported(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> bool:
    """Whether this kernel takes these tensors: bf16 on a Hopper-class CUDA device, heads of 128,
    the last dimension contiguous and every row 16-byte aligned (the descriptors need it)."""
    if not (q.is_cuda and q.dtype == k.dtype == v.dtype == torch.bfloat16):
        return False
    if q.shape[-1] != 128 or k.shape[-1] != 128 or v.shape[-1] != 128:
        return False
    if torch.cuda.get_device_capability(q.device)[0] != 9:
        return False
    return all(t.stride(-1) == 1 and t.stride(1) == t.shape[-1] and t.data_ptr() % 16 == 0
               and t.stride(0) * 2 % 16 == 0 for t in (q, k, v))


def hstu_attention_wg(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, offsets: torch.Tensor,
                      history: torch.Tensor, max_queries: int, alpha: float, scale: int, *,
                      q_offsets: torch.Tensor | None = None, tile: WgTile | None = None,
                      qk_fp8: bool = False, out_dtype: torch.dtype = torch.float32, q_in_kernel: bool = True,
                      k_scale: torch.Tensor | None = None, v_scale: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`suite.backends.kernels.hstu.hstu_attention` for bf16 on Hopper (see the module and
    :func:`supported`): q, k, v (T, heads, 128) packed by ``offsets``, -> (rows, heads, 128) in
    ``out_dtype`` (fp32, or bf16: the sums in fp32 rounded once, half the bytes written and read after);
    ``q_offsets``: q holds each request's candidate rows alone (``max_queries`` the most of any).
    ``qk_fp8``: q and k quantized to e4m3, q with one scale per token and head
    (:func:`suite.backends.kernels.hstu.quantize_heads`), k with one per request and head
    (:func:`suite.backends.kernels.hstu.quantize_spans`: a row of scores then takes one scale, as in
    bf16 it takes alpha); the scores from fp8 products, the rest as in bf16; specialized shapes only
    (:data:`FP8_WG_TILE` unless ``tile`` is given). With ``q_in_kernel`` (the default) the kernel
    reads q in bf16 and quantizes each block of it as it starts, with the same scales: no pass of its
    own over q. ``k_scale`` (heads,), fp32: k's dequantizing scale per head for every request, one
    that no value can exceed 448 times (``STULayer.key_bounds() / 448`` from a layer's weights), so
    k takes one pass instead of two. ``v_scale`` (heads,), fp32, with ``qk_fp8``: ``p v`` in e4m3 too,
    v divided by its head's scale into v^T by one pass (:func:`suite.backends.kernels.hstu.quantize_v_columns`;
    the scale a bound no value exceeds 448 times, ``STULayer.value_bounds() / 448``), one consumer
    of 64 rows (:data:`FP8V_WG_TILE` unless ``tile`` is given)."""
    v_fp8 = v_scale is not None
    tile = tile or (FP8V_WG_TILE if v_fp8 else FP8_WG_TILE if qk_fp8 else WG_TILE)
    if qk_fp8 and not tile.specialized:
        raise ValueError(f"q and k in fp8 take specialized shapes (got {tile.text()})")
    if v_fp8 and not (qk_fp8 and tile.block_m == 64):
        raise ValueError(f"v in fp8 takes qk_fp8 and one consumer of 64 rows (got {tile.text()}, qk_fp8={qk_fp8})")
    total, heads, d = k.shape
    rows = q.shape[0]
    if out_dtype not in (torch.float32, torch.bfloat16):
        raise ValueError(f"the output is fp32 or bf16 (got {out_dtype})")
    out = torch.empty((rows, heads, d), dtype=out_dtype, device=q.device)
    if rows == 0 or total == 0:
        return out.zero_()
    candidates = q_offsets is not None
    hstu._allocator(q.device)  # the kernel builds its descriptors on the device, in scratch from torch's allocator
    grid = (triton.cdiv(max_queries, tile.block_m), (len(offsets) - 1) * heads)
    sq = sk = out  # unread unless the fp8 passes below set them
    if qk_fp8:
        if not q_in_kernel:
            q, sq = hstu.quantize_heads(q)
        k, sk = hstu.quantize_spans(k, offsets, scale, given=k_scale)
    sv = v_columns = offsets  # read only with v in fp8
    if v_fp8:
        sv = v_scale.to(device=v.device, dtype=torch.float32).reshape(heads).contiguous()
        v, v_columns = hstu.quantize_v_columns(v, offsets, scale, sv)
    args = (q, k, v, out, offsets, q_offsets if candidates else offsets, history, 0.5 * alpha, 1.0 / scale,
            q.stride(0), k.stride(0), v.stride(1) if v_fp8 else v.stride(0), out.stride(0))
    if tile.specialized:
        _hstu_ws_fwd[grid](*args, sq, sk, sq.stride(0), sk.stride(0), sv, v_columns, HEADS=heads, D=d,
                           BLOCK_N=tile.block_n, STAGES=tile.stages, CONSUMERS=tile.block_m // 64,
                           CANDIDATES=candidates, PINGPONG=tile.pingpong, FP8=qk_fp8,
                           QUANT_Q=qk_fp8 and q_in_kernel, CONSUMER_REGS=240, FP8_V=v_fp8, num_warps=tile.num_warps,
                           maxnreg=tile.maxnreg)
    else:
        _hstu_wg_fwd[grid](*args, HEADS=heads, D=d, BLOCK_M=tile.block_m, BLOCK_N=tile.block_n, STAGES=tile.stages,
                           CANDIDATES=candidates, ORDER=tile.order, num_warps=tile.num_warps)
    return out


def tune(history: torch.Tensor, candidates: torch.Tensor, heads: int = 4, dim: int = 128, *, calls: int = 3,
         tiles: tuple[WgTile, ...] | None = None, rejected: list[str] | None = None,
         qk_fp8: bool = False) -> list[tuple[WgTile, float]]:
    """:func:`suite.backends.kernels.hstu.tune` for this kernel: time every shape in ``tiles``
    (:data:`WG_CANDIDATES`, or :data:`FP8_CANDIDATES` with ``qk_fp8``) on random bf16 q, k, v of
    jagged requests of these counts, keep those whose output is the Triton kernel's (with
    ``qk_fp8``: the default fp8 shape's) within :data:`hstu.TUNE_TOLERANCE` of its largest output,
    make the fastest :data:`WG_TILE` (:data:`FP8_WG_TILE`), and return (tile, ms) of each kept;
    ``rejected`` says why the others were not. With ``qk_fp8`` a shape's time includes quantizing q
    and k, the same for every shape."""
    global WG_TILE, FP8_WG_TILE
    jag, q, k, v = hstu.tune_inputs(history, candidates, heads, dim, torch.bfloat16)

    def launch(tile: WgTile) -> torch.Tensor:
        return hstu_attention_wg(q, k, v, jag.offsets, jag.history, jag.max_len, 0.1, jag.max_len, tile=tile, qk_fp8=qk_fp8)

    if qk_fp8:
        want = launch(FP8_WG_TILE)
    else:
        want = hstu.hstu_attention(q, k, v, jag.offsets, jag.history, jag.max_len, 0.1, jag.max_len)
    timings = hstu.time_shapes(tiles or (FP8_CANDIDATES if qk_fp8 else WG_CANDIDATES), launch, want, calls, rejected)
    if timings:
        fastest = min(timings, key=lambda t: t[1])[0]
        if qk_fp8:
            FP8_WG_TILE = fastest
        else:
            WG_TILE = fastest
    return timings
