"""HSTU's SiLU attention as one Triton kernel: dlrm-v3's attention without the (L, L) score matrix.

:func:`hstu_attention` computes what :func:`suite.models.dlrm_v3.hstu_attention` does,
``(silu(alpha q k^T) / L * mask) v`` per head, but makes the mask from the token ids inside the
kernel (user 0, history 1..H, every candidate H + 1: a row sees smaller ids and itself; the user
row sees the whole history) and never writes the scores: each program owns ``BLOCK_M`` rows of one
(request, head), walks the key blocks up to the last one its rows may see, and accumulates in fp32.
Without a softmax there is no running maximum to keep, so the blocks simply add up.

:func:`use_fused_attention` swaps it into a built dlrm-v3 (torch-cuda, ``--option fused=1``).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def _hstu_fwd(q_ptr, k_ptr, v_ptr, o_ptr, L, HIST, alpha, inv_len,
              s_qb, s_ql, s_kb, s_kl, s_vb, s_vl, s_ob, s_ol,
              DQK: tl.constexpr, DV: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
              IEEE: tl.constexpr):
    bh = tl.program_id(0)
    rows = tl.program_id(1) * BLOCK_M + tl.arange(0, BLOCK_M)
    dq = tl.arange(0, DQK)
    dv = tl.arange(0, DV)
    q = tl.load(q_ptr + bh * s_qb + rows[:, None] * s_ql + dq[None, :], mask=rows[:, None] < L, other=0.0)
    row_id = tl.minimum(rows, HIST + 1)
    acc = tl.zeros((BLOCK_M, DV), dtype=tl.float32)
    for start in range(0, L, BLOCK_N):
        cols = start + tl.arange(0, BLOCK_N)
        k = tl.load(k_ptr + bh * s_kb + cols[:, None] * s_kl + dq[None, :], mask=cols[:, None] < L, other=0.0)
        if IEEE:  # fp32 inputs: full-precision products, not TF32
            s = tl.dot(q, tl.trans(k), input_precision="ieee") * alpha
        else:
            s = tl.dot(q, tl.trans(k)).to(tl.float32) * alpha
        s = s / (1.0 + tl.exp(-s)) * inv_len
        col_id = tl.minimum(cols, HIST + 1)
        seen = (row_id[:, None] > col_id[None, :]) | (rows[:, None] == cols[None, :])
        seen = seen | ((rows[:, None] == 0) & (cols[None, :] <= HIST))
        seen = seen & (cols[None, :] < L)
        s = tl.where(seen, s, 0.0)
        v = tl.load(v_ptr + bh * s_vb + cols[:, None] * s_vl + dv[None, :], mask=cols[:, None] < L, other=0.0)
        if IEEE:
            acc += tl.dot(s, v, input_precision="ieee")
        else:
            acc += tl.dot(s.to(v.dtype), v).to(tl.float32)
    tl.store(o_ptr + bh * s_ob + rows[:, None] * s_ol + dv[None, :], acc.to(o_ptr.dtype.element_ty),
             mask=rows[:, None] < L)


def hstu_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, history: int, alpha: float) -> torch.Tensor:
    """q, k (N, heads, L, Dqk), v (N, heads, L, Dv) -> (N, heads, L, Dv), masks made from ``history``."""
    n, h, length, dqk = q.shape
    dv = v.shape[-1]
    q3, k3, v3 = (t.reshape(n * h, length, t.shape[-1]).contiguous() for t in (q, k, v))
    out = torch.empty((n * h, length, dv), dtype=q.dtype, device=q.device)
    block_m = 16 if length <= 64 else 64
    block_n = 16 if length <= 64 else 64
    grid = (n * h, triton.cdiv(length, block_m))
    _hstu_fwd[grid](q3, k3, v3, out, length, history, alpha, 1.0 / length,
                    q3.stride(0), q3.stride(1), k3.stride(0), k3.stride(1), v3.stride(0), v3.stride(1),
                    out.stride(0), out.stride(1), DQK=dqk, DV=dv, BLOCK_M=block_m, BLOCK_N=block_n,
                    IEEE=q.dtype == torch.float32)
    return out.view(n, h, length, dv)


def use_fused_attention(model: torch.nn.Module) -> torch.nn.Module:
    """Have every STU layer of a built dlrm-v3 call the fused kernel instead of the plain path."""
    history = int(model.history)  # type: ignore[arg-type]
    for layer in model.layers:  # type: ignore[union-attr]
        layer.attend = lambda q, k, v, mask, alpha: hstu_attention(q, k, v, history, alpha)
    # What torch-cuda records; "ids": the model reads each table's ids apart, not one packed matrix.
    model.describe = lambda: {"attention": "triton hstu_attention", "ids": "tables"}
    return model
