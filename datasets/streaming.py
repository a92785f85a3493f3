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
* candidates: ``K`` items drawn the same way at the request's period.

Layout of a request (one row of each array; see :class:`suite.models.configs.DLRMv3Config`):
dense (N, H) float32, each history event's age in hours at the request's time (hours, not seconds:
ages of up to 100 days stay finite in fp16, whose largest value is 65,504); sparse: user
(N, 1), history items, categories, ratings, actions (N, H each), candidate items and categories
(N, K each), all int32; labels (N, K) int8. Rows are in request-time order. Real or user-supplied
data go into this layout (``suite.datasets.store.save`` with the same arrays) and run the same.

Labels come from the seeded teacher model, as for every other model
(:func:`suite.datasets.synthetic.generate_requests` draws them):
its candidate logits are standardised, and ``label = u < sigmoid(z / T + b)`` with T and b set so
its AUC over all candidates is :data:`suite.datasets.synthetic.TARGET_AUC` and the positive rate
:data:`suite.datasets.synthetic.TARGET_CLICK_RATE`.
"""

from __future__ import annotations

import math

import numpy as np

from suite.datasets.batch import Batch
from suite.models import ModelSpec, build
from suite.models.configs import DLRMv3Config

TIMESTAMPS = 100
TRAIN_TIMESTAMPS = 90
PERIOD_S = 86_400
ITEM_RATINGS = np.array([5.0, 4.0, 3.0, 2.0, 1.0])
ITEM_RATING_P = np.array([0.2, 0.25, 0.25, 0.2, 0.1])
ACTION_THRESHOLDS = (2.5, 3.5, 4.25, 4.75)
TEACHER_BATCH = 256
#: Part of dlrm-v3's dataset cache key: bumped when the layout or the distributions change.
#: 2: ages in hours (were seconds, which overflow fp16). 3: meta.json records the teacher's NE,
#: accuracy and group AUC (MLPerf v6.0's gate; a cache without them would not be gated).
LAYOUT_VERSION = 3


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
    schema = spec.schema
    h, k = schema.dense, schema.tasks
    users_n, items_n = schema.table("user").rows, schema.table("items").rows
    cats_n = schema.table("categories").rows
    period = np.sort(rng.integers(TRAIN_TIMESTAMPS, TIMESTAMPS, requests))
    query_s = period * PERIOD_S + rng.integers(0, PERIOD_S, requests)
    order = np.argsort(query_s, kind="stable")
    period, query_s = period[order], query_s[order]
    users = rng.integers(0, users_n, requests)
    distinct, inverse = np.unique(users, return_inverse=True)
    alpha = rng.integers(1, 501, len(distinct)).astype(np.float64)
    prefs = rng.gamma(np.repeat((alpha / cats_n)[:, None], cats_n, axis=1) + 1e-3)
    prefs /= prefs.sum(axis=1, keepdims=True)
    prefs = prefs[inverse]
    # History: events in earlier periods, oldest first, each at a uniform second of its period.
    hist_t = np.sort(rng.integers(0, period[:, None], (requests, h)), axis=1)
    hist_s = hist_t * PERIOD_S + np.sort(rng.integers(0, PERIOD_S, (requests, h)), axis=1)
    hist_c = _draw_categories(rng, prefs, h)
    hist_i = _draw_items(rng, hist_c, hist_t, items_n, cats_n)
    rating = (category_rating(rng, hist_c, hist_t, cats_n) + item_rating(hist_i)) / 2
    rating = np.clip(np.round(rating * 4) / 4, 1.0, 5.0)
    actions = 1 + sum((rating >= th).astype(np.int64) << (b + 1) for b, th in enumerate(ACTION_THRESHOLDS))
    cand_c = _draw_categories(rng, prefs, k)
    cand_i = _draw_items(rng, cand_c, np.repeat(period[:, None], k, axis=1), items_n, cats_n)
    i32 = np.int32
    return Batch(
        dense=((query_s[:, None] - hist_s) / 3600.0).astype(np.float32),
        sparse=(
            users[:, None].astype(i32), hist_i.astype(i32), hist_c.astype(i32),
            (rating * 4 - 4).astype(i32), actions.astype(i32), cand_i.astype(i32), cand_c.astype(i32),
        ),
    )


def teacher_logits(spec: ModelSpec, items: Batch, device: str | None = None) -> np.ndarray:
    """The seeded model's candidate logits (N, K) float64: tables fp32, everything after the
    lookups in float64, so labels do not depend on the device or threads."""
    import torch
    from torch import nn

    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model = build(spec, device=dev)
    for module in model.modules():
        if not isinstance(module, nn.Embedding):
            for _name, param in list(module.named_parameters(recurse=False)):
                param.data = param.data.double()
    out = []
    try:
        with torch.inference_mode():
            for start in range(0, len(items), TEACHER_BATCH):
                end = start + TEACHER_BATCH
                dense = torch.from_numpy(np.ascontiguousarray(items.dense[start:end])).to(dev)
                sparse = [torch.from_numpy(np.ascontiguousarray(s[start:end])).to(dev) for s in items.sparse]
                out.append(model(dense, sparse).cpu().numpy())
    finally:
        del model
        if dev.type == "cuda":
            torch.cuda.empty_cache()
    return np.concatenate(out).astype(np.float64)
