"""Accuracy metrics, in numpy alone so the checker needs no ML framework."""

from __future__ import annotations

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
