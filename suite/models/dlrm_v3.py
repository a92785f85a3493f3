"""MLPerf's DLRM-v3: HSTU generative ranking (Zhai et al., ICML 2024) in plain PyTorch.

Written from the description in MLPerf Inference's ``recommendation/dlrm_v3`` (its configs and the
plain-PyTorch ops of ``generative_recommenders``), not copied. Requests are jagged, as the
reference's: each has its own history length and candidate count. They arrive padded to the
shape's widest request (the dataset layout, ``datasets/streaming.py``: -1 ages mark padding
slots); the model packs the real tokens of a batch into one (tokens, dim) tensor and runs every
layer on that, so padding costs no compute. Only the plain attention pads, per batch, to the
batch's longest request (as the reference's PyTorch attention does); the Triton kernel
(``backends/kernels/hstu.py``) reads the packed tensor directly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from suite.models.base import ModelSchema
from suite.models.configs import DLRMv3Config
from suite.models.init import Init
from suite.models.layers import mlp, normal_


@dataclass(frozen=True)
class Jagged:
    """Where each request's tokens lie in a packed (tokens, ...) tensor.

    Request b's tokens are rows ``offsets[b]:offsets[b + 1]``: its user token, its ``history[b]``
    events, then its candidates. ``scale`` is the constant HSTU divides the attention by (the
    widest request's length, the same for every batch, so a request scores the same in any batch).
    """

    offsets: torch.Tensor  # (N + 1,) int64
    history: torch.Tensor  # (N,) int64
    max_len: int
    scale: int

    @property
    def lengths(self) -> torch.Tensor:
        return self.offsets[1:] - self.offsets[:-1]

    @classmethod
    def of(cls, history: torch.Tensor, candidates: torch.Tensor, scale: int) -> Jagged:
        lengths = 1 + history + candidates
        offsets = torch.zeros(len(lengths) + 1, dtype=torch.long, device=lengths.device)
        offsets[1:] = torch.cumsum(lengths, 0)
        max_len = int(lengths.max()) if len(lengths) else 0
        return cls(offsets=offsets, history=history.long(), max_len=max_len, scale=scale)


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


def hstu_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor, alpha: float,
                   scale: int | None = None) -> torch.Tensor:
    """SiLU attention: (silu(alpha q k^T) / scale, masked) v, per head.

    q, k (N, heads, L, Dqk); v (N, heads, L, Dv); mask (L, L) or (N, L, L) bool; ``scale`` defaults
    to L. No softmax: HSTU keeps the weights' intensity, and divides by a length instead.
    """
    n = q.shape[2] if scale is None else scale
    scores = F.silu(torch.matmul(q, k.transpose(-1, -2)) * alpha) / n
    if mask.dim() == 3:
        mask = mask.unsqueeze(1)
    scores = scores * mask.to(scores.dtype)
    return torch.matmul(scores, v)


def jagged_mask(jag: Jagged) -> torch.Tensor:
    """(N, L, L) bool, L the batch's longest request: :func:`attention_mask` of each request's own
    history length, and no padding column seen."""
    length = jag.max_len
    device = jag.offsets.device
    pos = torch.arange(length, device=device)
    h = jag.history.view(-1, 1)
    ids = torch.minimum(pos.view(1, -1), h + 1)  # (N, L): 0 user, 1..h history, h + 1 candidates
    rows, cols = ids.unsqueeze(2), ids.unsqueeze(1)
    mask = (rows > cols) | torch.eye(length, dtype=torch.bool, device=device).unsqueeze(0)
    mask[:, 0, :] |= pos.view(1, -1) <= h
    return mask & (pos.view(1, 1, -1) < jag.lengths.view(-1, 1, 1))


def jagged_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, jag: Jagged, alpha: float) -> torch.Tensor:
    """The plain path on packed tokens: q, k (T, heads, Dqk), v (T, heads, Dv) -> (T, heads, Dv).

    Pads the batch to its longest request (the (L, L) scores need a rectangle), applies each
    request's mask, and packs the result again, as the reference's PyTorch attention does.
    """
    n = len(jag.history)
    total = q.shape[0]
    request = torch.repeat_interleave(torch.arange(n, device=q.device), jag.lengths)
    pos = torch.arange(total, device=q.device) - jag.offsets[request]

    def pad(t: torch.Tensor) -> torch.Tensor:
        out = t.new_zeros((n, jag.max_len, *t.shape[1:]))
        out[request, pos] = t
        return out.transpose(1, 2)  # (N, heads, L, D)

    out = hstu_attention(pad(q), pad(k), pad(v), jagged_mask(jag), alpha, jag.scale)
    return out.transpose(1, 2)[request, pos]


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
        #: The attention on packed tokens; a fused kernel may take its place (backends/kernels/hstu.py).
        self.attend = jagged_attention

    def forward(self, x: torch.Tensor, jag: Jagged) -> torch.Tensor:
        """x (T, dim): the packed tokens of a batch of requests laid out by ``jag``, in the residual
        stream's dtype (fp32 when the layer's weights are 16-bit: see :class:`DLRMv3`)."""
        total = x.shape[0]
        h, lin, qk = self.heads, self.lin, self.qk
        low = self.uvqk.weight.dtype
        # Layer norms run in the stream's dtype; only the matmuls' operands are rounded to 16 bits.
        uvqk = self.uvqk(F.layer_norm(x, (x.shape[-1],)).to(low))
        u, v, q, k = torch.split(uvqk, [lin * h, lin * h, qk * h, qk * h], dim=-1)
        u = F.silu(u)
        a = self.attend(q.view(total, h, qk), k.view(total, h, qk), v.view(total, h, lin), jag, self.alpha)
        a = a.reshape(total, h * lin).to(x.dtype)
        y = u.to(x.dtype) * F.layer_norm(a, (h * lin,))
        return x + self.out(torch.cat([u, a.to(low), y.to(low)], dim=-1)).to(x.dtype)


class DLRMv3(nn.Module):
    """DLRM-HSTU ranking, as MLPerf Inference v6.0 runs it (``recommendation/dlrm_v3``).

    ``forward(dense (N, H + K): the history events' ages in hours then 0 per candidate, -1 in
    padding slots; sparse [user (N, 1), items, categories, ratings, actions (N, H each), candidates,
    candidate categories (N, K each)])`` returns logits (N, K), 0 in padding slots. Each request's
    real events and candidates come first in their slots; the model reads their counts from the
    dense array and runs on the packed real tokens only (:class:`Jagged`).

    Tokens: the user id through a contextual MLP; a history event is the content MLP of its item
    and category embeddings plus the embeddings of its rating and its action set; a candidate is the
    content MLP of its item and category. Position and age (log-bucketed) embeddings are added, as
    the reference's timestamp positional encoder does, then the STU layers, a final layer norm, and
    a head MLP per candidate token. Weights are seeded (suite.models.init), not a trained checkpoint.

    Differences from the reference, on purpose: action tokens are added to their item tokens, not
    interleaved as separate tokens; the layer norms carry no affine parameters (a seeded model's
    would be ones and zeros); training-only parts (dropout, the auxiliary causal tasks) are absent.
    """

    #: A CUDA graph cannot replay it: each batch packs its own number of real tokens.
    graph_safe: ClassVar[bool] = False
    #: Parameters kept fp32 in a bf16 or fp16 build (suite.models.init.materialize), and the
    #: residual stream with them: what biased bf16 scores. The metric is first-order sensitive to a
    #: shift of every logit (the teacher's raw scores are miscalibrated against its labels: the mean
    #: of p - label is about 0.27, so NE moves about 0.4% per 0.01 of shift), and rounding fixed
    #: weights to bf16 shifts every logit the same way. Measured on the CPU at --scale small (64
    #: requests, logits minus fp32's): all bf16 +0.0050 mean (std 0.0091); weights alone rounded:
    #: content MLP +0.0017, head +0.0012 (its last bias has std 1), STU layers +0.0006, tables
    #: +0.0003; with the stream, head, position/age and the content and context MLPs in fp32:
    #: +0.0009 (std 0.0054). Those parts are under 1% of a request's FLOPs at MLPerf's size.
    #: All-bf16 missed the 99.9% NE and accuracy gates on the H200 at MLPerf's size (NE +0.19%).
    KEEP_FP32: ClassVar[tuple[str, ...]] = ("head.", "position", "age", "content.", "context.")
    PARTS: ClassVar[dict[str, str]] = {
        "user": "embedding", "items": "embedding", "categories": "embedding", "ratings": "embedding",
        "actions": "embedding", "content": "mlp", "context": "mlp", "layers": "attention", "head": "mlp",
    }

    def __init__(self, config: DLRMv3Config, schema: ModelSchema, init: Init) -> None:
        super().__init__()
        e = config.dim
        self.candidates = schema.tasks
        self.history = schema.dense - schema.tasks
        #: What the attention divides by: the widest request's tokens (a constant, as the reference's
        #: max_seq_len), so a request scores the same whatever else is in its batch.
        self.max_tokens = 1 + self.history + self.candidates
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

    def forward(self, dense: torch.Tensor, sparse: list[torch.Tensor]) -> torch.Tensor:
        user, items, cats, ratings, actions, cand, cand_cats = sparse
        # ``wide``: the dtype of the residual stream, its layer norms, the attention's output and the
        # parts in KEEP_FP32 (fp32 on a 16-bit build, float64 for the teacher). Only the STU layers'
        # matmuls (and the tables) run in the build's dtype: they are nearly all of the FLOPs.
        wide = self.position.dtype
        device = dense.device
        n, hmax, kmax = dense.shape[0], self.history, self.candidates
        real = dense >= 0
        hist_real, cand_real = real[:, :hmax], real[:, hmax:]
        hist_n, cand_n = hist_real.sum(1), cand_real.sum(1)
        jag = Jagged.of(hist_n, cand_n, self.max_tokens)
        start = jag.offsets[:-1].view(-1, 1)
        hist_at = (start + 1 + torch.arange(hmax, device=device))[hist_real]
        cand_at = (start + 1 + hist_n.view(-1, 1) + torch.arange(kmax, device=device))[cand_real]

        def emb(table: nn.Embedding, ids: torch.Tensor, to: torch.dtype) -> torch.Tensor:
            # Rows are cast to the layers' dtype, so a float64 teacher keeps fp32 tables.
            return table(ids.long()).to(to)

        def content(item_ids: torch.Tensor, cat_ids: torch.Tensor) -> torch.Tensor:
            to = self.content[0].weight.dtype
            return self.content(torch.cat([emb(self.items, item_ids, to), emb(self.categories, cat_ids, to)], dim=-1)).to(wide)

        history = content(items[hist_real], cats[hist_real])
        history = history + emb(self.ratings, ratings[hist_real], wide) + emb(self.actions, actions[hist_real], wide)
        x = torch.empty((int(jag.offsets[-1]), history.shape[-1]), dtype=wide, device=device)
        x[jag.offsets[:-1]] = self.context(emb(self.user, user, self.context[0].weight.dtype)).view(n, -1).to(wide)
        x[hist_at] = history
        x[cand_at] = content(cand[cand_real], cand_cats[cand_real])
        # Position: 0 the user, a history event its distance from the end of its history plus one,
        # every candidate 1 (the reference's _get_col_indices); age: log buckets, 0 but for events.
        positions = torch.zeros(x.shape[0], dtype=torch.long, device=device)
        positions[hist_at] = (hist_n.view(-1, 1) - torch.arange(hmax, device=device) + 1)[hist_real]
        positions[cand_at] = 1
        ages = torch.zeros(x.shape[0], dtype=torch.float32, device=device)
        ages[hist_at] = dense[:, :hmax][hist_real].float()
        x = x + self.position[positions] + self.age[time_buckets(ages, self.buckets)]
        for layer in self.layers:
            x = layer(x, jag)
        out = self.head(F.layer_norm(x[cand_at], (x.shape[-1],)).to(self.head[0].weight.dtype)).squeeze(-1)
        logits = torch.zeros((n, kmax), dtype=out.dtype, device=device)
        logits[cand_real] = out
        return logits
