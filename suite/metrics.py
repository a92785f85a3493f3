"""Accuracy metrics, in numpy alone so the checker needs no ML framework."""

from __future__ import annotations

import math

import numpy as np


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U), ties averaged as scikit-learn does.

    Returns NaN when ``labels`` holds a single class.
    """
    labels = np.asarray(labels).reshape(-1).astype(bool)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if labels.shape != scores.shape:
        raise ValueError(f"labels and scores differ in length ({labels.size} vs {scores.size})")
    n_pos = int(labels.sum())
    n_neg = labels.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    starts = np.cumsum(counts) - counts
    group_rank = starts + (counts + 1) / 2.0
    ranks = group_rank[inverse]
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def expected_auc(z: np.ndarray, p: np.ndarray) -> float:
    """The AUC that labels drawn as Bernoulli(``p``) would give the scores ``z``, in expectation.

    Sum over pairs of p_i (1 - p_j) [z_i > z_j], normalised by the expected positive-negative pair
    count; ties in ``z`` are assumed absent (continuous scores).
    """
    order = np.argsort(z, kind="stable")
    p_sorted = p[order]
    q_sorted = 1.0 - p_sorted
    below = np.cumsum(q_sorted) - q_sorted
    pairs = p_sorted.sum() * q_sorted.sum() - float(np.dot(p_sorted, q_sorted))
    return float(np.dot(p_sorted, below) / pairs)


# DLRM-v3 (MLPerf v6.0) reports three metrics over a run's candidates, as the reference's
# accuracy.py does through torchrec: lifetime NE, accuracy at threshold 0.5 and group AUC, where
# a group is one request (one user at one timestamp) and its candidates.

#: torchrec's NE clamps predictions to [eta, 1 - eta] before taking logs.
NE_ETA = 1e-12


def _flat(values: np.ndarray, name: str, size: int | None = None) -> np.ndarray:
    out = np.asarray(values, dtype=np.float64).reshape(-1)
    if size is not None and out.size != size:
        raise ValueError(f"{name} has {out.size} values, expected {size}")
    return out


def normalized_entropy(
    labels: np.ndarray, predictions: np.ndarray, weights: np.ndarray | None = None, *, eps: float = NE_ETA
) -> float:
    """Normalized entropy: the weighted log loss divided by the entropy of the weighted base rate.

    Lower is better; 1.0 is a model that always predicts the base rate. ``eps`` clamps the
    predictions (and the base rate) away from 0 and 1: torchrec's ``1e-12`` for the run's metric,
    MLPerf's TEST08 script uses ``1e-7`` per request. As both, a single-class set of labels gets
    the clamped base rate's tiny entropy (a huge NE), not an error. Returns NaN when the total
    weight is 0.
    """
    y = _flat(labels, "labels")
    p = np.clip(_flat(predictions, "predictions", y.size), eps, 1.0 - eps)
    w = np.ones_like(y) if weights is None else _flat(weights, "weights", y.size)
    total = float(w.sum())
    if total <= 0.0:
        return float("nan")
    cross_entropy = -float(np.dot(w, y * np.log(p) + (1.0 - y) * np.log1p(-p)))
    rate = min(max(float(np.dot(w, y)) / total, eps), 1.0 - eps)
    baseline = -(rate * math.log(rate) + (1.0 - rate) * math.log1p(-rate))
    if baseline <= 0.0:
        return float("nan")
    return cross_entropy / (total * baseline)


def binary_accuracy(
    labels: np.ndarray, predictions: np.ndarray, weights: np.ndarray | None = None, *, threshold: float = 0.5
) -> float:
    """Weighted share of candidates whose ``prediction >= threshold`` equals their label (torchrec's)."""
    y = _flat(labels, "labels") > 0.5
    p = _flat(predictions, "predictions", y.size)
    w = np.ones(y.size) if weights is None else _flat(weights, "weights", y.size)
    total = float(w.sum())
    if total <= 0.0:
        return float("nan")
    return float(np.dot(w, (p >= threshold) == y)) / total


def group_auc(labels: np.ndarray, predictions: np.ndarray, group_sizes: np.ndarray) -> tuple[float, int]:
    """Group ("session") AUC: the unweighted mean of each group's AUC, and how many groups counted.

    Groups are consecutive runs of ``group_sizes`` candidates (for DLRM-v3 a request: one user
    at one timestamp). As torchrec's GAUC, which MLPerf's checker reads as ``lifetime_gauc``, a
    group counts only if it holds both classes and not all its predictions are equal; every
    counted group weighs the same, whatever its size. Tied predictions inside a group get their
    average rank (torchrec breaks ties by sort order; the two agree without ties). Returns
    (NaN, 0) when no group counts.
    """
    sizes = np.asarray(group_sizes, dtype=np.int64).reshape(-1)
    if (sizes < 0).any():
        raise ValueError("group sizes must be >= 0")
    n = int(sizes.sum())
    y = _flat(labels, "labels", n) > 0.5
    s = _flat(predictions, "predictions", n)
    groups = sizes.size
    if n == 0:
        return float("nan"), 0
    gid = np.repeat(np.arange(groups), sizes)
    order = np.lexsort((s, gid))  # by group, then score
    s, y = s[order], y[order]
    # Runs of equal scores inside a group share their average 1-based rank.
    new_run = np.empty(n, dtype=bool)
    new_run[0] = True
    new_run[1:] = (s[1:] != s[:-1]) | (gid[1:] != gid[:-1])
    run_start = np.flatnonzero(new_run)
    run_len = np.diff(np.append(run_start, n))
    group_start = np.cumsum(sizes) - sizes
    position = np.arange(n) - group_start[gid]
    ranks = (position[run_start] + (run_len + 1) / 2.0)[np.cumsum(new_run) - 1]
    positives = np.bincount(gid, weights=y, minlength=groups)
    negatives = sizes - positives
    rank_sum = np.bincount(gid, weights=ranks * y, minlength=groups)
    runs_per_group = np.bincount(gid[run_start], minlength=groups)
    counted = (positives > 0) & (negatives > 0) & (runs_per_group > 1)
    if not counted.any():
        return float("nan"), 0
    pos, neg = positives[counted], negatives[counted]
    per_group = (rank_sum[counted] - pos * (pos + 1) / 2.0) / (pos * neg)
    return float(per_group.mean()), int(counted.sum())
