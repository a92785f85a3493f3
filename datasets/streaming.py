"""DLRM-v3's streaming synthetic data: one sample per request, histories before the request's time.

The distributions follow MLPerf's ``recommendation/dlrm_v3/streaming_synthetic_data.py`` (read,
not copied), vectorised and capped to the model's scale:

* time: :data:`TIMESTAMPS` periods of one day each (90 training, 10 inference); a request falls in
  an inference period, at a uniform second of it, and its user's events fall in earlier periods.
* users: ids uniform over the user table (the benchmark samples 1% of 5 M users). Each user has a
  category preference drawn from a Dirichlet with concentration alpha_u / C per category,
  alpha_u uniform in [1, 500]: the limit of the reference's Chinese-restaurant draw
  p(c) ~ alpha / C + count_c. Preferences are drawn once per distinct user of a dataset.
* items: ``C`` categories own equal consecutive blocks of the item table; an event of period t
  draws its item uniformly from the first (t + 1) / T of its category's block (the catalogue grows
  over time).
* ratings: an item's own rating in {5, 4, 3, 2, 1} with probabilities (.2, .25, .25, .2, .1) (a hash
  of the item id, so no 1e9-long array is kept), averaged with a category rating whose level
  depends on the category's quarter and drifts with cos(t pi / 4), as the reference's. Ratings
  are multiples of 0.25 in [1, 5], stored as ids ``4 r - 4`` (17 rows).
* actions: the set of action bits (weights 1, 2, 4, 8, 16 as the reference's ``action_weights``)
  an event carries: viewed always, then one bit per rating threshold 2.5, 3.5, 4.25, 4.75.
* history lengths (jagged): as the reference assembles an inference request's user history at
  period t: a base block, then one block per training period (each present with the
  generator's user sampling ratio 0.7), then one per earlier inference period (likewise); a
  block holds ``max(round(N(100, 25)), 33)`` events (100 = 1e9 items x 50 samples per item / 5e6
  users / 100 periods). That is about 6,750 events on average and under 9,000 in practice; a
  longer history is truncated to the stored width keeping its first events, as the reference
  truncates (at 16,351). Narrower shapes (``small``, ``tiny``) scale each request's drawn length
  by ``width / 9,216`` and keep evenly spaced events of the drawn history.
* candidates: the reference's inference requests hold exactly 2,048 candidates
  (``num_inference_candidates``); the tiny shape draws 2 to 8 so tests see jagged candidates.
  Candidate items are drawn as history items, at the request's period.

Layout of a request (one row of each array; see :class:`suite.models.configs.DLRMv3Config`), padded
to the shape's widest request (H events, K candidates), real entries first: dense (N, H + K)
float32, each history event's age in hours at the request's time (hours, not seconds: ages of up
to 100 days stay finite in fp16, whose largest value is 65,504), then 0.0 per candidate, and -1.0
in every padding slot, which is how the model knows each request's lengths; sparse: user (N, 1),
history items, categories, ratings, actions (N, H each), candidate items and categories (N, K
each), all int32, 0 in padding slots; labels (N, K) int8, -1 in padding slots. Rows are in
request-time order. ``keys`` (N, 2) int64 holds each request's (ts_idx, query_idx) as MLPerf's
TEST08 keys it: the inference period (0-9) and the request's rank within it. Real or user-supplied
data go into this layout (``suite.datasets.store.save`` with the same arrays) and run the same.

Labels come from the seeded teacher model, as for every other model
(:func:`suite.datasets.synthetic.generate_requests` draws them):
its candidate logits are standardised, and ``label = u < sigmoid(z / T + b)`` with T and b set so
its AUC over all candidates is :data:`suite.datasets.synthetic.TARGET_AUC` and the positive rate
:data:`suite.datasets.synthetic.TARGET_CLICK_RATE`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from suite.datasets.batch import Batch
from suite.models import ModelSpec, build
from suite.models.base import ModelSchema
from suite.models.configs import DLRMv3Config

TIMESTAMPS = 100
TRAIN_TIMESTAMPS = 90
PERIOD_S = 86_400
ITEM_RATINGS = np.array([5.0, 4.0, 3.0, 2.0, 1.0])
ITEM_RATING_P = np.array([0.2, 0.25, 0.25, 0.2, 0.1])
ACTION_THRESHOLDS = (2.5, 3.5, 4.25, 4.75)
#: The teacher runs at most this many requests at once, and at most TEACHER_TOKENS_2 / tokens^2 of
#: them (its float64 attention holds heads x tokens^2 scores per request).
TEACHER_BATCH = 256
TEACHER_TOKENS_2 = 1 << 24
#: The reference generator's history blocks: mean events per user and period, spread, floor
#: (num_eval_candidates + 1), and the chance a user is sampled at a period.
BLOCK_MEAN = 100
BLOCK_STD = 25
BLOCK_MIN = 33
USER_SAMPLING = 0.7
#: The widest history of MLPerf's shape (DLRMv3Config.history): narrower shapes scale to it.
MLPERF_HISTORY = 9216
#: Marks a padding slot in the dense array (an event or candidate that is not there).
PAD_AGE = -1.0
#: Part of dlrm-v3's dataset cache key: bumped when the layout or the distributions change.
#: 2: ages in hours (were seconds, which overflow fp16). 3: meta.json records the teacher's NE,
#: accuracy and group AUC (MLPerf v6.0's gate; a cache without them would not be gated).
#: 4: jagged requests (dense carries the candidates' slots, -1 pads) and (ts_idx, query_idx) keys.
LAYOUT_VERSION = 4


def request_lengths(dense: np.ndarray, history: int) -> tuple[np.ndarray, np.ndarray]:
    """(history events, candidates) of each request of a dense array laid out as above."""
    real = np.asarray(dense) >= 0
    return real[:, :history].sum(axis=1), real[:, history:].sum(axis=1)


def history_block_periods(rng: np.random.Generator, period: np.ndarray) -> list[np.ndarray]:
    """Per request, the period of every event of its full-size history, oldest first: the
    reference's blocks (base at period -1, training periods 0-89, then earlier inference periods)."""
    n = len(period)
    cols = np.arange(-1, TIMESTAMPS)  # -1 is the base block
    sizes = np.maximum(np.rint(rng.normal(BLOCK_MEAN, BLOCK_STD, (n, len(cols)))), BLOCK_MIN).astype(np.int64)
    present = rng.random((n, len(cols))) < USER_SAMPLING
    present[:, 0] = True  # the base block is always there
    present &= cols[None, :] < period[:, None]
    sizes *= present
    return [np.repeat(cols, row) for row in sizes]


@dataclass(frozen=True)
class Requests:
    """Drawn requests: their model inputs and their (ts_idx, query_idx) keys (N, 2)."""

    items: Batch
    keys: np.ndarray


def item_rating(items: np.ndarray) -> np.ndarray:
    """Each item's own rating, a fixed function of its id (a multiplicative hash into [0, 1))."""
    u = ((items.astype(np.uint64) * np.uint64(2654435761) + np.uint64(97)) % np.uint64(1 << 32)) / float(1 << 32)
    return ITEM_RATINGS[np.searchsorted(np.cumsum(ITEM_RATING_P), u, side="right").clip(0, 4)]


#: The reference's category rating levels per quarter of the categories (before the drift) and
#: their probabilities.
CATEGORY_LEVELS = np.array([[4.5, 4.0, 3.5], [4.5, 4.0, 3.5], [3.5, 3.0, 2.5], [2.5, 2.0, 1.5]])
CATEGORY_P = np.array([[0.8, 0.2, 0.0], [0.1, 0.8, 0.1], [0.1, 0.8, 0.1], [0.1, 0.8, 0.1]])


def category_rating(rng: np.random.Generator, cats: np.ndarray, t: np.ndarray, categories: int) -> np.ndarray:
    """The category part of a rating: the reference's per-quarter levels, each drifting with
    0.5 cos((t + 2 j) pi / 4) for level j."""
    quarter = np.minimum(cats * 4 // max(categories, 1), 3)
    u = rng.random(cats.shape)
    pick = (u[..., None] > np.cumsum(CATEGORY_P[quarter], axis=-1)).sum(-1).clip(0, 2)
    return CATEGORY_LEVELS[quarter, pick] + 0.5 * np.cos((t + 2 * pick) * math.pi / 4)


def _draw_categories(rng: np.random.Generator, prefs: np.ndarray, count: int) -> np.ndarray:
    """(N, count) categories, each row from its own preference vector (N, C)."""
    cum = np.cumsum(prefs, axis=1)
    cum[:, -1] = 1.0
    u = rng.random((prefs.shape[0], count))
    out = np.empty(u.shape, dtype=np.int64)
    for i in range(prefs.shape[0]):
        out[i] = np.searchsorted(cum[i], u[i], side="right")
    return out.clip(0, prefs.shape[1] - 1)


def _draw_items(rng: np.random.Generator, cats: np.ndarray, t: np.ndarray, items: int, categories: int) -> np.ndarray:
    per = max(items // categories, 1)
    avail = np.maximum(per * (t + 1) // TIMESTAMPS, 1)
    return (cats * per + (rng.random(cats.shape) * avail).astype(np.int64)) % items


def features(config: DLRMv3Config, spec: ModelSpec, requests: int, rng: np.random.Generator) -> Batch:
    """Draw ``requests`` requests (no labels) in request-time order."""
    return draw(config, spec, requests, rng).items


def draw(config: DLRMv3Config, spec: ModelSpec, requests: int, rng: np.random.Generator) -> Requests:
    """Draw ``requests`` jagged requests (no labels) in request-time order, with their keys."""
    schema = spec.schema
    k = schema.tasks
    h = schema.dense - k
    k_min = config.min_candidates(schema_cap(spec))
    users_n, items_n = schema.table("user").rows, schema.table("items").rows
    cats_n = schema.table("categories").rows
    period = np.sort(rng.integers(TRAIN_TIMESTAMPS, TIMESTAMPS, requests))
    query_s = period * PERIOD_S + rng.integers(0, PERIOD_S, requests)
    order = np.argsort(query_s, kind="stable")
    period, query_s = period[order], query_s[order]
    ts_idx = period - TRAIN_TIMESTAMPS
    first = np.searchsorted(ts_idx, ts_idx, side="left")
    keys = np.stack([ts_idx, np.arange(requests) - first], axis=1).astype(np.int64)
    users = rng.integers(0, users_n, requests)
    distinct, inverse = np.unique(users, return_inverse=True)
    alpha = rng.integers(1, 501, len(distinct)).astype(np.float64)
    prefs = rng.gamma(np.repeat((alpha / cats_n)[:, None], cats_n, axis=1) + 1e-3)
    prefs /= prefs.sum(axis=1, keepdims=True)
    prefs = prefs[inverse]
    # History: the reference's blocks, oldest first, each event at a uniform second of its period.
    hist_t = np.zeros((requests, h), dtype=np.int64)
    hist_n = np.zeros(requests, dtype=np.int64)
    for i, events in enumerate(history_block_periods(rng, period)):
        if h >= MLPERF_HISTORY:
            kept = events[:h]  # truncated keeping the first events, as the reference truncates
        else:
            want = int(np.clip(round(len(events) * h / MLPERF_HISTORY), 1, h))
            kept = events[(np.arange(want) * len(events)) // want]
        hist_n[i] = len(kept)
        hist_t[i, : len(kept)] = kept
    real = np.arange(h)[None, :] < hist_n[:, None]
    seconds = np.where(real, rng.integers(0, PERIOD_S, (requests, h)), 0)
    hist_s = hist_t * PERIOD_S + seconds
    hist_s = np.where(real, hist_s, np.iinfo(np.int64).max)
    hist_s.sort(axis=1)  # events of one period in time order too; padding stays last
    hist_c = _draw_categories(rng, prefs, h)
    hist_i = _draw_items(rng, hist_c, np.maximum(hist_t, 0), items_n, cats_n)
    rating = (category_rating(rng, hist_c, hist_t, cats_n) + item_rating(hist_i)) / 2
    rating = np.clip(np.round(rating * 4) / 4, 1.0, 5.0)
    actions = 1 + sum((rating >= th).astype(np.int64) << (b + 1) for b, th in enumerate(ACTION_THRESHOLDS))
    cand_n = rng.integers(k_min, k + 1, requests)
    cand_real = np.arange(k)[None, :] < cand_n[:, None]
    cand_c = _draw_categories(rng, prefs, k)
    cand_i = _draw_items(rng, cand_c, np.repeat(period[:, None], k, axis=1), items_n, cats_n)
    ages = np.where(real, (query_s[:, None] - np.where(real, hist_s, 0)) / 3600.0, PAD_AGE)
    dense = np.concatenate([ages, np.where(cand_real, 0.0, PAD_AGE)], axis=1).astype(np.float32)
    i32 = np.int32

    def pad(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return np.where(mask, ids, 0).astype(i32)

    items = Batch(
        dense=dense,
        sparse=(
            users[:, None].astype(i32), pad(hist_i, real), pad(hist_c, real),
            pad(rating * 4 - 4, real), pad(actions, real), pad(cand_i, cand_real), pad(cand_c, cand_real),
        ),
    )
    return Requests(items=items, keys=keys)


def schema_cap(spec: ModelSpec) -> int | None:
    """The row cap of ``spec``'s scale."""
    from suite.models.base import parse_scale

    return parse_scale(spec.scale)


def teacher_rows(schema: ModelSchema, sparse: list[np.ndarray]) -> tuple[dict[str, np.ndarray], list[np.ndarray]]:
    """The rows of each of ``schema``'s tables that ``sparse`` (a batch's, in the schema's order)
    looks up, sorted (int64), by table (a table that ``shares`` another's rows counts as that one);
    and ``sparse`` with every id replaced by its position among them. The teacher then holds only
    the rows it looks up: its fp32 item table at a 100 M cap would be 205 GB, more than an H200."""
    owners: dict[str, list[int]] = {}
    for i, table in enumerate(schema.tables):
        owners.setdefault(table.shares or table.name, []).append(i)
    rows: dict[str, np.ndarray] = {}
    out = list(sparse)
    for name, columns in owners.items():
        ids = {c: np.asarray(sparse[c], dtype=np.int64) for c in columns}
        used = np.unique(np.concatenate([i.ravel() for i in ids.values()]))
        rows[name] = used
        for c, i in ids.items():
            out[c] = np.searchsorted(used, i)
    return rows, out


def teacher_logits(spec: ModelSpec, items: Batch, device: str | None = None) -> np.ndarray:
    """The seeded model's candidate logits (N, K) float64: tables fp32, everything after the
    lookups in float64, so the logits differ between devices and threads only in their last bits
    (which ``synthetic.calibrate_drawn`` keeps from flipping a label). The large tables hold only
    the rows ``items`` look up (:func:`teacher_rows`), drawn as the whole table's."""
    import torch
    from torch import nn

    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    rows, sparse_ids = teacher_rows(spec.schema, items.sparse)
    model = build(spec, device=dev, rows={name: torch.from_numpy(ids) for name, ids in rows.items()})
    for module in model.modules():
        if not isinstance(module, nn.Embedding):
            for _name, param in list(module.named_parameters(recurse=False)):
                param.data = param.data.double()
    out = []
    tokens = spec.schema.dense + 1
    step = max(1, min(TEACHER_BATCH, TEACHER_TOKENS_2 // (tokens * tokens)))
    try:
        with torch.inference_mode():
            for start in range(0, len(items), step):
                end = start + step
                dense = torch.from_numpy(np.ascontiguousarray(items.dense[start:end])).to(dev)
                sparse = [torch.from_numpy(np.ascontiguousarray(s[start:end])).to(dev) for s in sparse_ids]
                out.append(model(dense, sparse).cpu().numpy())
    finally:
        del model
        if dev.type == "cuda":
            torch.cuda.empty_cache()
    return np.concatenate(out).astype(np.float64)
