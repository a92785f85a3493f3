"""MLPerf's DLRM-v3: HSTU generative ranking (Zhai et al., ICML 2024) in plain PyTorch.

Written from the description in MLPerf Inference's ``recommendation/dlrm_v3`` (its configs and the
plain-PyTorch ops of ``generative_recommenders``), not copied. Requests are jagged, as the
reference's: each has its own history length and candidate count. They arrive padded to the
shape's widest request (the dataset layout, ``datasets/streaming.py``: -1 ages mark padding
slots); the model packs the real tokens of a batch into one (tokens, dim) tensor and runs every
layer on that, so padding costs no compute. Only the plain attention pads, per batch, to the
batch's longest request (as the reference's PyTorch attention does); the Triton kernel
(``backends/kernels/hstu.py``) reads the packed tensor directly. A CUDA graph replays a batch as
one more request that pads its totals up to the graph's (:class:`Padding`).

Size: this module is over 450 lines because the model and its token layout (where a batch's
jagged tokens lie, how their sizes reach the host, how a graph pads them) are one description:
each class of the layout is what the forward reads.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from suite.models.base import ModelSchema
from suite.models.configs import DLRMv3Config
from suite.models.init import Init
from suite.models.layers import mlp, normal_


def repeat(values: torch.Tensor, counts: torch.Tensor, total: int | None) -> torch.Tensor:
    """``repeat_interleave(values, counts)``; ``total``, the result's length if the host knows it,
    spares a GPU reading it back (a sync, which a CUDA graph cannot capture). ONNX's exporter knows
    no such argument (the CPU's export path never needs it)."""
    if total is None or not counts.is_cuda:
        return torch.repeat_interleave(values, counts)
    return torch.repeat_interleave(values, counts, output_size=total)


@dataclass(frozen=True)
class Jagged:
    """Where each request's tokens lie in a packed (tokens, ...) tensor.

    Request b's tokens are rows ``offsets[b]:offsets[b + 1]``: its user token, its ``history[b]``
    events, then its candidates; ``candidate_offsets`` packs the candidates alone (request b's are
    rows ``candidate_offsets[b]:candidate_offsets[b + 1]`` of a candidates-only tensor). ``scale``
    is the constant HSTU divides the attention by (the widest request's length, the same for every
    batch, so a request scores the same in any batch).
    """

    offsets: torch.Tensor  # (N + 1,) int64
    history: torch.Tensor  # (N,) int64
    max_len: int
    scale: int
    candidate_offsets: torch.Tensor  # (N + 1,) int64
    max_candidates: int

    @property
    def lengths(self) -> torch.Tensor:
        return self.offsets[1:] - self.offsets[:-1]

    @classmethod
    def of(cls, history: torch.Tensor, candidates: torch.Tensor, scale: int) -> Jagged:
        """From the counts on their device (reads two maxima back: a host sync on a GPU)."""
        return cls.from_counts(history, candidates, scale, int(history.max()) if len(history) else 0,
                               int(candidates.max()) if len(candidates) else 0)

    @classmethod
    def from_counts(cls, history: torch.Tensor, candidates: torch.Tensor, scale: int, max_history: int,
                    max_candidates: int) -> Jagged:
        """From the counts on their device and their maxima already known on the host (no sync)."""

        def offsets_of(lengths: torch.Tensor) -> torch.Tensor:
            out = torch.zeros(len(lengths) + 1, dtype=torch.long, device=lengths.device)
            out[1:] = torch.cumsum(lengths, 0)
            return out

        history, candidates = history.long(), candidates.long()
        # The longest request is the one with the most of both: an upper bound otherwise, which only
        # sizes the kernel's grid (rows past a request's end do nothing).
        max_len = 1 + max_history + max_candidates if len(history) else 0
        return cls(offsets=offsets_of(1 + history + candidates), history=history, max_len=max_len, scale=scale,
                   candidate_offsets=offsets_of(candidates), max_candidates=max_candidates)

    def candidate_rows(self, total: int | None = None) -> torch.Tensor:
        """(C,) each candidate's row in the packed tokens, request by request; ``total``: C, if
        known on the host (a GPU then need not read it back)."""
        counts = self.candidate_offsets[1:] - self.candidate_offsets[:-1]
        request = repeat(torch.arange(len(counts), device=counts.device), counts, total)
        within = torch.arange(len(request), device=counts.device) - self.candidate_offsets[request]
        return self.offsets[request] + 1 + self.history[request] + within


@dataclass(frozen=True)
class Extent:
    """The sizes a batch's token layout takes from the host: history events and candidates in all,
    and the most of each in one request (they size the attention's grid; an upper bound will do).
    From the counts (:meth:`of`), or fixed for a CUDA graph (:meth:`Padding.extent`)."""

    history: int
    candidates: int
    most_history: int
    most_candidates: int

    @classmethod
    def of(cls, counts: np.ndarray | torch.Tensor) -> Extent:
        """Of counts (2, N) on the host."""
        counts = np.asarray(counts)
        if not counts.shape[1]:
            return cls(0, 0, 0, 0)
        total, most = counts.sum(1), counts.max(1)
        return cls(int(total[0]), int(total[1]), int(most[0]), int(most[1]))


@dataclass(frozen=True)
class Padding:
    """How a jagged batch takes a CUDA graph's fixed shapes: n requests with ``Th`` history events
    and ``Tc`` candidates in all run as n + 1, the last a padding request holding the events and
    candidates that bring the totals up to the next multiples of the steps. It is a request of its
    own (its input row is any valid one; its logits are dropped): attention never crosses from one
    request to another and every other layer works token by token, so the real requests score as
    they would without it. A graph so serves every batch of n requests whose totals round up to its
    :meth:`key`; the padding costs at most a step of tokens. Steps are at most a request's slots
    (``history``, ``candidates``), so the padding request's entries index inside its own row."""

    history: int
    candidates: int
    history_step: int
    candidate_step: int

    def __post_init__(self) -> None:
        if not (0 < self.history_step <= self.history and 0 < self.candidate_step <= self.candidates):
            raise ValueError(f"steps must be within a request's slots (got {self.history_step} of {self.history}, "
                             f"{self.candidate_step} of {self.candidates})")

    def key(self, counts: np.ndarray) -> tuple[int, int, int]:
        """(requests, history events, candidates) of the graph that serves counts (2, N)."""
        total = counts.sum(1)
        return counts.shape[1], self._up(int(total[0]), self.history_step), self._up(int(total[1]), self.candidate_step)

    def padded(self, counts: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """(2, N + 1): counts (2, N) and the padding request's, into ``out`` if given."""
        n, history, candidates = self.key(counts)
        out = np.empty((2, n + 1), dtype=np.int64) if out is None else out
        out[:, :n] = counts
        out[0, n] = history - int(counts[0].sum())
        out[1, n] = candidates - int(counts[1].sum())
        return out

    def extent(self, key: tuple[int, int, int]) -> Extent:
        """The fixed sizes of ``key``'s graph (the most in a request: the slots, an upper bound)."""
        return Extent(key[1], key[2], self.history, self.candidates)

    def keys(self, sample: np.ndarray, requests: int, spread: float) -> list[tuple[int, int, int]]:
        """Keys of batches of ``requests`` requests drawn like ``sample`` (2, M), counts of drawn
        requests: the totals within ``spread`` standard deviations of their mean (inside what
        requests as small or as large as the sample's allow), every combination, largest first."""

        def span(values: np.ndarray, step: int) -> range:
            mean, sd = requests * float(values.mean()), math.sqrt(requests) * float(values.std())
            lo = max(requests * int(values.min()), math.floor(mean - spread * sd))
            hi = min(requests * int(values.max()), math.ceil(mean + spread * sd))
            return range(self._up(lo, step), self._up(hi, step) + 1, step)

        return [(requests, h, c) for h in reversed(span(sample[0], self.history_step))
                for c in reversed(span(sample[1], self.candidate_step))]

    @staticmethod
    def _up(value: int, step: int) -> int:
        return -(-value // step) * step


@dataclass(frozen=True)
class Tokens:
    """Where a batch's real entries go: its :class:`Jagged` layout; each history event's and each
    candidate's row in the packed tokens and slot in the padded (N, H) and (N, K) inputs; every
    token's position-embedding row. Integer work alone, from each request's counts.

    It is made on the inputs' device, its sizes from the same counts on the host: :meth:`DLRMv3.forward`
    counts the requests on the device and reads the counts back (a host sync on a GPU), unless the
    caller gives it tokens made from counts it already holds (torch-cuda: the dataset's, sent in
    one small copy), so a batch never waits for the device.
    """

    jag: Jagged
    hist_at: torch.Tensor  # (Th,) int64
    cand_at: torch.Tensor  # (Tc,) int64, request by request
    hist_ids: torch.Tensor  # (Th,) int64, into the flattened (N, H) inputs
    cand_ids: torch.Tensor  # (Tc,) int64, into the flattened (N, K) inputs
    #: (T,) int64: 0 the user token, a history event its distance from the end of its history plus
    #: one, every candidate 1 (the reference's ``_get_col_indices``).
    positions: torch.Tensor

    @classmethod
    def of(cls, hist_n: torch.Tensor, cand_n: torch.Tensor, extent: Extent, history: int, candidates: int,
           scale: int) -> Tokens:
        """For requests of ``hist_n`` real history events and ``cand_n`` candidates ((N,), on the
        device to compute on), padded to ``history`` and ``candidates`` slots; ``extent``: their
        sizes, known on the host, whence every shape (nothing is read back)."""
        n = len(hist_n)
        device = hist_n.device
        jag = Jagged.from_counts(hist_n, cand_n, scale, extent.most_history, extent.most_candidates)
        total_h, total_c = extent.history, extent.candidates

        def slots(count: torch.Tensor, total: int) -> tuple[torch.Tensor, torch.Tensor]:
            # (request, slot) of each request's first ``count`` slots, request by request: the real
            # entries, which come first in their slots (the dataset layout).
            request = repeat(torch.arange(n, device=device), count, total)
            first = torch.cumsum(count, 0) - count
            return request, torch.arange(total, device=device) - first[request]

        hist_b, hist_j = slots(jag.history, total_h)
        cand_b, cand_j = slots(cand_n.long(), total_c)
        start = jag.offsets[:-1]
        hist_at = start[hist_b] + 1 + hist_j
        cand_at = start[cand_b] + 1 + jag.history[cand_b] + cand_j
        positions = torch.zeros(total_h + total_c + n, dtype=torch.long, device=device)
        positions[hist_at] = jag.history[hist_b] - hist_j + 1
        positions.index_fill_(0, cand_at, 1)  # a scalar put through an index would be a host copy
        return cls(jag=jag, hist_at=hist_at, cand_at=cand_at, hist_ids=hist_b * history + hist_j,
                   cand_ids=cand_b * candidates + cand_j, positions=positions)


def request_counts(dense: np.ndarray, history: int) -> np.ndarray:
    """(2, N) int64: each request's real history events, then its candidates, from its dense row
    (ages, -1 in padding slots; ``history`` slots, then the candidates'), as :meth:`DLRMv3.forward`
    counts them."""
    real = np.asarray(dense) >= 0
    return np.stack([real[:, :history].sum(1), real[:, history:].sum(1)]).astype(np.int64)


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


def jagged_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, jag: Jagged, alpha: float,
                     candidates: bool = False) -> torch.Tensor:
    """The plain path on packed tokens: q, k (T, heads, Dqk), v (T, heads, Dv) -> (T, heads, Dv).

    Pads the batch to its longest request (the (L, L) scores need a rectangle), applies each
    request's mask, and packs the result again, as the reference's PyTorch attention does. With
    ``candidates``, q holds the candidate rows alone (packed by ``jag.candidate_offsets``) and so
    does the result: a row's output depends on its own query only, so the other rows' queries are
    zeros here and their outputs are dropped.
    """
    n = len(jag.history)
    total = k.shape[0]
    if candidates:
        rows = jag.candidate_rows(q.shape[0])
        full = q.new_zeros((total, *q.shape[1:]))
        full[rows] = q
        return jagged_attention(full, k, v, jag, alpha)[rows]
    request = repeat(torch.arange(n, device=q.device), jag.lengths, total)
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


def norm_to(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A layer norm without affine parameters, in x's dtype, the result rounded to ``dtype``."""
    return F.layer_norm(x, (x.shape[-1],)).to(dtype)


def rows_sum(out: torch.Tensor, at: torch.Tensor | None, src: torch.Tensor | None,
             parts: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> None:
    """``out[at] = src + table_1[ids_1] + table_2[ids_2] + ...`` in out's dtype, added left to right
    (``at`` None: out's rows in order; ``src`` None: the tables' rows alone). How the forward builds
    its tokens: the content MLP's input from two tables' rows side by side (``out`` a column slice),
    each token from its MLP output plus its rating, action, position and age rows, scattered to its
    packed row. A fused kernel may take its place (one pass: each row read once, written once)."""
    y = None if src is None else src.to(out.dtype)
    for table, ids in parts:
        rows = F.embedding(ids.long(), table).to(out.dtype)
        y = rows if y is None else y + rows
    assert y is not None, "rows_sum needs src or a table"
    if at is None:
        out.copy_(y)
    else:
        out[at] = y


def residual_out(x: torch.Tensor, g: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """A layer's output ``x + g W^T``: the output projection of the gate ``g`` added to the residual
    stream x in x's dtype. A fused form may add it inside the product and write x in place."""
    return x + F.linear(g, weight)


def gate(u: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """The output projection's input, in u's dtype: ``[silu(u), a, silu(u) * LN(a)]`` (the
    reference's ``concat_ux``); u (rows, D) as the projection gives it, a (rows, D) the attention
    as its kernel wrote it (bf16 from a 16-bit build's products), whose layer norm and product run
    in fp32 at least (a float64 teacher's in float64)."""
    su = F.silu(u)
    wide = a.to(torch.promote_types(a.dtype, torch.float32))
    return torch.cat([su, a.to(u.dtype), (su * F.layer_norm(wide, (a.shape[-1],))).to(u.dtype)], dim=-1)


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
        #: The attention on packed tokens, the input layer norm and the output gate; fused kernels
        #: may take their places (backends/kernels/hstu.py).
        self.attend = jagged_attention
        self.norm_to = norm_to
        self.gate = gate
        self.residual_out = residual_out

    # The uvqk product and the output, as methods an instance may shadow (suite.models.dlrm_v3_fp8
    # does, with fp8 forms): the product's input made from x, the product's output columns lo:hi, the
    # input's rows ``keep``, and the layer's output from x, u and the attention.
    def source(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The uvqk product's input: the layer norm of x, rounded to the matmuls' dtype."""
        return (self.norm_to(x, self.uvqk.weight.dtype),)

    def product(self, src: tuple[torch.Tensor, ...], lo: int, hi: int) -> torch.Tensor:
        """Columns lo:hi of the uvqk product of :meth:`source`'s input."""
        return F.linear(src[0], self.uvqk.weight[lo:hi], self.uvqk.bias[lo:hi])

    def pick(self, src: tuple[torch.Tensor, ...], keep: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The rows ``keep`` of :meth:`source`'s input."""
        return (src[0][keep],)

    def output(self, x: torch.Tensor, u: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """x plus the output projection of the gate of u and the attention a (rows, h * lin)."""
        return self.residual_out(x, self.gate(u, a), self.out.weight)

    def key_bounds(self) -> torch.Tensor:
        """(heads,) fp32: a bound on the magnitude of every key of each head, from the weights alone.
        A key's channel is ``LN(x) . w + b``, and a layer norm without affine parameters has norm at
        most sqrt(dim), so ``|k| <= sqrt(dim) |w| + |b|`` (Cauchy-Schwarz); 1% more for the 16-bit
        roundings of the norm and the product. What fp8 keys can be scaled by without reading them."""
        return self._bounds(2 * self.lin * self.heads + self.qk * self.heads, self.qk)

    def value_bounds(self) -> torch.Tensor:
        """(heads,) fp32: :meth:`key_bounds` for the values (v's channels of ``uvqk``): what fp8
        values are scaled by (``--option attention=qkv-fp8``)."""
        return self._bounds(self.lin * self.heads, self.lin)

    def _bounds(self, lo: int, width: int) -> torch.Tensor:
        h = self.heads
        w, b = self.uvqk.weight[lo:lo + width * h].float(), self.uvqk.bias[lo:lo + width * h].float()
        bound = w.norm(dim=1) * math.sqrt(w.shape[1]) + b.abs()
        return 1.01 * bound.view(h, width).amax(dim=1)

    def forward(self, x: torch.Tensor, jag: Jagged, keep: torch.Tensor | None = None) -> torch.Tensor:
        """x (T, dim): the packed tokens of a batch of requests laid out by ``jag``, in the residual
        stream's dtype (fp32 when the layer's weights are 16-bit: see :class:`DLRMv3`). ``keep``:
        the candidate rows (``jag.candidate_rows()``) when only their outputs are wanted (the last
        layer: the head reads nothing else); then the result is (C, dim), those rows alone, and
        their queries, gates, attention and output projection are the only ones computed (every
        row's keys and values still are: a candidate attends to the whole history). Exact."""
        h, lin, qk = self.heads, self.lin, self.qk
        # Layer norms run in the stream's dtype; only the matmuls' operands are rounded to 16 bits.
        src = self.source(x)
        cut = (0, lin * h, 2 * lin * h, 2 * lin * h + qk * h, 2 * lin * h + 2 * qk * h)  # u, v, q, k
        if keep is None:
            u, v, q, k = torch.split(self.product(src, 0, cut[4]), [lin * h, lin * h, qk * h, qk * h], dim=-1)
        else:
            v, k = self.product(src, cut[1], cut[2]), self.product(src, cut[3], cut[4])
            src, x = self.pick(src, keep), x[keep]
            u, q = self.product(src, cut[0], cut[1]), self.product(src, cut[2], cut[3])
        rows, total = x.shape[0], k.shape[0]
        a = self.attend(q.view(rows, h, qk), k.view(total, h, qk), v.view(total, h, lin), jag, self.alpha,
                        candidates=keep is not None)
        return self.output(x, u, a.reshape(rows, h * lin))


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
        #: How tokens are assembled from table rows (:func:`rows_sum`); a fused kernel may take its place.
        self.rows_sum = rows_sum

    def tokens(self, counts: torch.Tensor, extent: Extent) -> Tokens:
        """A batch's :class:`Tokens` from each request's real history events and candidates,
        ``counts`` (2, N) on the device to compute on, and their :class:`Extent` (every size comes
        from it, so nothing is read back: a fixed one for a CUDA graph)."""
        return Tokens.of(counts[0], counts[1], extent, self.history, self.candidates, self.max_tokens)

    def forward(self, dense: torch.Tensor, sparse: list[torch.Tensor], tokens: Tokens | None = None) -> torch.Tensor:
        """Logits (N, K) of a batch. ``tokens``: the batch's :class:`Tokens` on the inputs' device,
        made by the caller from counts it already knows; without it the model counts each
        request's real entries on the device and reads the counts back (a host sync on a GPU)."""
        user, items, cats, ratings, actions, cand, cand_cats = sparse
        # ``wide``: the dtype of the residual stream, its layer norms (the output gate's too) and the
        # parts in KEEP_FP32 (fp32 on a 16-bit build, float64 for the teacher). Only the STU layers'
        # matmuls, the attention's output and the tables are in the build's dtype: nearly all of the FLOPs.
        wide = self.position.dtype
        device = dense.device
        n, hmax = dense.shape[0], self.history
        if tokens is None:
            real = dense >= 0
            counts = torch.stack([real[:, :hmax].sum(1), real[:, hmax:].sum(1)])
            tokens = self.tokens(counts, Extent.of(counts.cpu()))
        jag, hist_at, cand_at, hist_ids, cand_ids = tokens.jag, tokens.hist_at, tokens.cand_at, tokens.hist_ids, tokens.cand_ids
        start = jag.offsets[:-1]

        def at(t: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
            return t.reshape(-1)[ids]

        def content(item_ids: torch.Tensor, cat_ids: torch.Tensor) -> torch.Tensor:
            # The MLP's input, item and category rows side by side in its dtype (a float64 teacher
            # widens fp32 tables' rows), written straight into place.
            d = self.items.weight.shape[1]
            wide_in = torch.empty((len(item_ids), d + self.categories.weight.shape[1]),
                                  dtype=self.content[0].weight.dtype, device=device)
            self.rows_sum(wide_in[:, :d], None, None, [(self.items.weight, item_ids)])
            self.rows_sum(wide_in[:, d:], None, None, [(self.categories.weight, cat_ids)])
            return self.content(wide_in)

        x = torch.empty((tokens.positions.shape[0], self.position.shape[1]), dtype=wide, device=device)
        # Every token: its vector plus its position row and its age bucket's row (log buckets of an
        # event's age; 0 for the user and the candidates), each token's sum written to its row.
        zero_age = time_buckets(torch.zeros(1, device=device), self.buckets)
        ages = time_buckets(at(dense[:, :hmax], hist_ids), self.buckets)
        self.rows_sum(x, hist_at, content(at(items, hist_ids), at(cats, hist_ids)),
                      [(self.ratings.weight, at(ratings, hist_ids)), (self.actions.weight, at(actions, hist_ids)),
                       (self.position, tokens.positions[hist_at]), (self.age, ages)])
        self.rows_sum(x, cand_at, content(at(cand, cand_ids), at(cand_cats, cand_ids)),
                      [(self.position, tokens.positions[cand_at]), (self.age, zero_age.expand(len(cand_at)))])
        context = self.context(F.embedding(user.reshape(-1).long(), self.user.weight).to(self.context[0].weight.dtype))
        self.rows_sum(x, start, context, [(self.position, tokens.positions[start]), (self.age, zero_age.expand(n))])
        for i, layer in enumerate(self.layers):
            # The last layer computes the candidate rows alone: the head reads nothing else.
            x = layer(x, jag, cand_at) if i == len(self.layers) - 1 else layer(x, jag)
        if not len(self.layers):
            x = x[cand_at]
        out = self.head(F.layer_norm(x, (x.shape[-1],)).to(self.head[0].weight.dtype)).squeeze(-1)
        logits = torch.zeros((n, self.candidates), dtype=out.dtype, device=device)
        logits.view(-1)[cand_ids] = out
        return logits
