"""MLPerf's DLRM-v3: HSTU generative ranking (Zhai et al., ICML 2024) in plain PyTorch.

Written from the description in MLPerf Inference's ``recommendation/dlrm_v3`` (its configs and the
plain-PyTorch ops of ``generative_recommenders``), not copied. Requests are padded to one length
(every request of a dataset has the same history and candidate counts), so the jagged tensors of
the reference become dense (N, L, E) ones and the masks are the same for every row.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from suite.models.base import ModelSchema
from suite.models.configs import DLRMv3Config
from suite.models.init import Init
from suite.models.layers import mlp, normal_


def attention_mask(history: int, candidates: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """(L, L) bool, L = 1 + history + candidates: which token (row) attends to which (column).

    As the reference's ``_get_valid_attn_mask`` with one contextual token and the candidates as
    targets: token ids are 0 for the user, 1..H for the history and H + 1 for every candidate; a
    row sees a column whose id is smaller, and itself. The user token also sees the whole history.
    So the history is causal, a candidate sees the user and all the history but no other candidate.
    """
    n = 1 + history + candidates
    ids = torch.arange(n, device=device).clamp(max=history + 1)
    rows, cols = ids.view(n, 1), ids.view(1, n)
    mask = (rows > cols) | torch.eye(n, dtype=torch.bool, device=device)
    mask[0, : history + 1] = True
    return mask


def hstu_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor, alpha: float) -> torch.Tensor:
    """SiLU attention: (silu(alpha q k^T) / L, masked) v, per head.

    q, k (N, heads, L, Dqk); v (N, heads, L, Dv); mask (L, L) bool. No softmax: HSTU keeps the
    weights' intensity, and divides by the sequence length instead of normalising rows.
    """
    n = q.shape[2]
    scores = F.silu(torch.matmul(q, k.transpose(-1, -2)) * alpha) / n
    scores = scores * mask.to(scores.dtype)
    return torch.matmul(scores, v)


def position_indices(history: int, candidates: int) -> torch.Tensor:
    """(L,) position-embedding rows: the user token 0, a history event its distance from the end of
    the history plus one, every candidate 1 (the reference's ``_get_col_indices``)."""
    n = 1 + history + candidates
    col = torch.arange(n - 1).clamp(max=history)
    return torch.cat([torch.zeros(1, dtype=torch.long), history - col + 1])


def time_buckets(age_h: torch.Tensor, buckets: int) -> torch.Tensor:
    """Log buckets of an event's age in hours: int(log(max(age_s, 1e-6) / 60)) of its age in seconds,
    as the reference buckets, clamped to [0, buckets]."""
    ts = torch.log(age_h.float().clamp(min=1e-6 / 3600) * 60.0)
    return ts.clamp(min=0).long().clamp(max=buckets)


class STULayer(nn.Module):
    """One HSTU layer: u, v, q, k = split(LN(x) W + b), u = silu(u); a = attention(q, k, v);
    x + [u, a, u * LN(a)] W_out (the reference's ``concat_ux`` output)."""

    def __init__(self, config: DLRMv3Config, init: Init) -> None:
        super().__init__()
        e, h = config.dim, config.heads
        self.heads, self.qk, self.lin = h, config.qk_dim, config.linear_dim
        width = (2 * config.linear_dim + 2 * config.qk_dim) * h
        self.uvqk = nn.Linear(e, width)
        self.out = nn.Linear(3 * config.linear_dim * h, e, bias=False)
        normal_(self.uvqk.weight, math.sqrt(2.0 / (e + width)), init)
        normal_(self.uvqk.bias, 0.01, init)
        normal_(self.out.weight, math.sqrt(2.0 / (3 * config.linear_dim * h + e)), init)
        self.alpha = 1.0 / math.sqrt(config.qk_dim)
        #: The attention function; a fused kernel may take its place (backends/kernels/hstu.py).
        self.attend = hstu_attention

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        n, length, _ = x.shape
        h, lin, qk = self.heads, self.lin, self.qk
        uvqk = self.uvqk(F.layer_norm(x, (x.shape[-1],)))
        u, v, q, k = torch.split(uvqk, [lin * h, lin * h, qk * h, qk * h], dim=-1)
        u = F.silu(u)

        def heads(t: torch.Tensor, d: int) -> torch.Tensor:
            return t.reshape(n, length, h, d).transpose(1, 2)

        a = self.attend(heads(q, qk), heads(k, qk), heads(v, lin), mask, self.alpha)
        a = a.transpose(1, 2).reshape(n, length, h * lin)
        y = u * F.layer_norm(a, (h * lin,))
        return x + self.out(torch.cat([u, a, y], dim=-1))


class DLRMv3(nn.Module):
    """DLRM-HSTU ranking, as MLPerf Inference v6.0 runs it (``recommendation/dlrm_v3``).

    ``forward(dense (N, H) ages in hours, sparse [user (N, 1), items, categories, ratings,
    actions (N, H each), candidates, candidate categories (N, K each)])`` returns logits (N, K).

    Tokens: the user id through a contextual MLP; a history event is the content MLP of its item
    and category embeddings plus the embeddings of its rating and its action set; a candidate is the
    content MLP of its item and category. Position and age (log-bucketed) embeddings are added, as
    the reference's timestamp positional encoder does, then the STU layers, a final layer norm, and
    a head MLP per candidate token. Weights are seeded (suite.models.init), not a trained checkpoint.

    Differences from the reference, on purpose: action tokens are added to their item tokens, not
    interleaved as separate tokens; the layer norms carry no affine parameters (a seeded model's
    would be ones and zeros); training-only parts (dropout, the auxiliary causal tasks) are absent.
    """

    PARTS: ClassVar[dict[str, str]] = {
        "user": "embedding", "items": "embedding", "categories": "embedding", "ratings": "embedding",
        "actions": "embedding", "content": "mlp", "context": "mlp", "layers": "attention", "head": "mlp",
    }

    def __init__(self, config: DLRMv3Config, schema: ModelSchema, init: Init) -> None:
        super().__init__()
        e = config.dim
        self.history, self.candidates = schema.dense, schema.tasks
        self.buckets = config.time_buckets

        def table(name: str, std: float) -> nn.Embedding:
            t = schema.table(name)
            emb = nn.Embedding(t.rows, t.dim)
            normal_(emb.weight, std, init)
            return emb

        self.user = table("user", 1.0)
        self.items = table("items", 1.0)
        self.categories = table("categories", 1.0)
        self.ratings = table("ratings", 0.5)
        self.actions = table("actions", 0.5)
        self.position = nn.Parameter(torch.empty(self.history + 2, e))  # rows 0..H+1 (position_indices)
        self.age = nn.Parameter(torch.empty(config.time_buckets + 1, e))
        normal_(self.position, 0.1, init)
        normal_(self.age, 0.1, init)
        self.content = mlp((2 * e, config.hidden, e), init, final_activation=False)
        self.context = mlp((e, config.hidden, e), init, final_activation=False)
        self.layers = nn.ModuleList(STULayer(config, init) for _ in range(config.layers))
        self.head = mlp((e, config.hidden, 1), init, final_activation=False)
        # Not buffers: materialize() fills parameters only; these are made on first use per device.
        self._consts: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}

    def _constants(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        consts = self._consts.get(device)
        if consts is None:
            consts = (attention_mask(self.history, self.candidates, device),
                      position_indices(self.history, self.candidates).to(device))
            self._consts[device] = consts
        return consts

    def forward(self, dense: torch.Tensor, sparse: list[torch.Tensor]) -> torch.Tensor:
        user, items, cats, ratings, actions, cand, cand_cats = sparse
        dtype = self.position.dtype
        mask, positions = self._constants(dense.device)

        def emb(table: nn.Embedding, ids: torch.Tensor) -> torch.Tensor:
            # Rows are cast to the dense layers' dtype, so a float64 teacher keeps fp32 tables.
            return table(ids.long()).to(dtype)

        history = self.content(torch.cat([emb(self.items, items), emb(self.categories, cats)], dim=-1))
        history = history + emb(self.ratings, ratings) + emb(self.actions, actions)
        targets = self.content(torch.cat([emb(self.items, cand), emb(self.categories, cand_cats)], dim=-1))
        context = self.context(emb(self.user, user))
        x = torch.cat([context, history, targets], dim=1)
        n = x.shape[0]
        ages = torch.cat([
            torch.zeros(n, 1, device=dense.device), dense.float(), torch.zeros(n, self.candidates, device=dense.device),
        ], dim=1)
        x = x + self.position[positions] + self.age[time_buckets(ages, self.buckets)]
        for layer in self.layers:
            x = layer(x, mask)
        out = F.layer_norm(x[:, 1 + self.history :], (x.shape[-1],))
        return self.head(out).squeeze(-1)
