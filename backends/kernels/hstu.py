"""HSTU's SiLU attention as one Triton kernel over jagged requests, without the (L, L) scores.

:func:`hstu_attention` computes what :func:`suite.models.dlrm_v3.jagged_attention` does,
``(silu(alpha q k^T) / scale * mask) v`` per request and head, straight on the packed tokens of a
batch (no padding): request b's tokens are rows ``offsets[b]:offsets[b + 1]``. The mask is made
from each request's history length inside the kernel (token ids: user 0, history 1..h, every
candidate h + 1; a row sees smaller ids and itself; the user row sees the whole history). Each
program owns ``BLOCK_M`` rows of one (request, head) and walks only the key blocks its rows may
see: the history (up to its own row for history rows), then, for candidate rows, their own
diagonal block. Without a softmax there is no running maximum to keep, so the blocks simply add up.

:func:`use_fused_attention` swaps it into a built dlrm-v3 (torch-cuda, ``--option fused=1``).
"""

from __future__ import annotations

from typing import Any

import torch
import triton
import triton.language as tl


@triton.jit
def _block(acc, q, k_ptr, v_ptr, s_kt, s_vt, rows, row_id, cols, start, n, hi, hist, alpha, inv_scale,
           dq, dv, IEEE: tl.constexpr):
    # Columns [.., hi) of one request's keys; a column at or past ``hi`` is another loop's.
    k = tl.load(k_ptr + (start + cols[:, None]) * s_kt + dq[None, :], mask=cols[:, None] < n, other=0.0)
    if IEEE:  # fp32 inputs: full-precision products, not TF32
        s = tl.dot(q, tl.trans(k), input_precision="ieee") * alpha
    else:
        s = tl.dot(q, tl.trans(k)).to(tl.float32) * alpha
    s = s / (1.0 + tl.exp(-s)) * inv_scale
    col_id = tl.minimum(cols, hist + 1)
    seen = (row_id[:, None] > col_id[None, :]) | (rows[:, None] == cols[None, :])
    seen = seen | ((rows[:, None] == 0) & (cols[None, :] <= hist))
    seen = seen & (cols[None, :] < hi) & (rows[:, None] < n)
    s = tl.where(seen, s, 0.0)
    v = tl.load(v_ptr + (start + cols[:, None]) * s_vt + dv[None, :], mask=cols[:, None] < n, other=0.0)
    if IEEE:
        acc += tl.dot(s, v, input_precision="ieee")
    else:
        acc += tl.dot(s.to(v.dtype), v).to(tl.float32)
    return acc


@triton.jit
def _hstu_fwd(q_ptr, k_ptr, v_ptr, o_ptr, offsets_ptr, history_ptr, alpha, inv_scale,
              s_qt, s_qh, s_kt, s_kh, s_vt, s_vh, s_ot, s_oh, HEADS: tl.constexpr,
              DQK: tl.constexpr, DV: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
              IEEE: tl.constexpr):
    pid = tl.program_id(0)
    b = pid // HEADS
    head = pid % HEADS
    start = tl.load(offsets_ptr + b)
    n = tl.load(offsets_ptr + b + 1) - start
    hist = tl.load(history_ptr + b)
    lo = tl.program_id(1) * BLOCK_M
    if lo < n:
        rows = lo + tl.arange(0, BLOCK_M)
        dq = tl.arange(0, DQK)
        dv = tl.arange(0, DV)
        q_base = q_ptr + head * s_qh
        k_base = k_ptr + head * s_kh
        v_base = v_ptr + head * s_vh
        q = tl.load(q_base + (start + rows[:, None]) * s_qt + dq[None, :], mask=rows[:, None] < n, other=0.0)
        row_id = tl.minimum(rows, hist + 1)
        acc = tl.zeros((BLOCK_M, DV), dtype=tl.float32)
        last = tl.minimum(lo + BLOCK_M, n) - 1  # the block's last real row
        # History columns: up to the last row for a block of history rows only; the whole history
        # for a block holding the user row or candidate rows.
        end = tl.where((lo == 0) | (last > hist), hist + 1, last + 1)
        for c in range(0, end, BLOCK_N):
            acc = _block(acc, q, k_base, v_base, s_kt, s_vt, rows, row_id, c + tl.arange(0, BLOCK_N), start, n,
                         end, hist, alpha, inv_scale, dq, dv, IEEE)
        # A candidate sees itself: the block's own diagonal past the history.
        for c in range(tl.maximum(lo, hist + 1), last + 1, BLOCK_N):
            acc = _block(acc, q, k_base, v_base, s_kt, s_vt, rows, row_id, c + tl.arange(0, BLOCK_N), start, n,
                         n, hist, alpha, inv_scale, dq, dv, IEEE)
        o_base = o_ptr + head * s_oh
        tl.store(o_base + (start + rows[:, None]) * s_ot + dv[None, :], acc.to(o_ptr.dtype.element_ty),
                 mask=rows[:, None] < n)


def hstu_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, offsets: torch.Tensor, history: torch.Tensor,
                   max_len: int, alpha: float, scale: int) -> torch.Tensor:
    """q, k (T, heads, Dqk), v (T, heads, Dv) packed by ``offsets`` (N + 1) with each request's
    ``history`` length (N,) -> (T, heads, Dv). The last dimension must be contiguous."""
    total, heads, dqk = q.shape
    dv = v.shape[-1]
    if total == 0:
        return v.new_zeros((0, heads, dv), dtype=torch.promote_types(v.dtype, torch.float32))
    if q.stride(-1) != 1 or k.stride(-1) != 1 or v.stride(-1) != 1:
        q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
    # The output in fp32 whatever the inputs: each row sums thousands of keys, accumulated in fp32;
    # rounding that sum to bf16 would throw away what the accumulation kept (docs/dlrm-v3.md).
    out = torch.empty((total, heads, dv), dtype=torch.promote_types(q.dtype, torch.float32), device=q.device)
    block = 16 if max_len <= 64 else 64
    grid = ((len(offsets) - 1) * heads, triton.cdiv(max_len, block))
    _hstu_fwd[grid](q, k, v, out, offsets, history, alpha, 1.0 / scale,
                    q.stride(0), q.stride(1), k.stride(0), k.stride(1), v.stride(0), v.stride(1),
                    out.stride(0), out.stride(1), HEADS=heads, DQK=dqk, DV=dv, BLOCK_M=block, BLOCK_N=block,
                    IEEE=q.dtype == torch.float32)
    return out


def fused_jagged_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, jag: Any, alpha: float) -> torch.Tensor:
    """:func:`suite.models.dlrm_v3.jagged_attention`'s signature, on the kernel."""
    return hstu_attention(q, k, v, jag.offsets, jag.history, jag.max_len, alpha, jag.scale)


def use_fused_attention(model: torch.nn.Module) -> torch.nn.Module:
    """Have every STU layer of a built dlrm-v3 call the fused kernel instead of the plain path."""
    for layer in model.layers:  # type: ignore[union-attr]  # torch types a submodule as Tensor | Module; this is the dlrm-v3 model's ModuleList
        layer.attend = fused_jagged_attention
    # What torch-cuda records; "ids": the model reads each table's ids apart, not one packed matrix.
    model.describe = lambda: {"attention": "triton hstu_attention (jagged)", "ids": "tables"}
    return model
