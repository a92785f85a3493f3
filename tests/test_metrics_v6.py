"""DLRM-v3's metrics (NE, accuracy, group AUC) against plain loops over small arrays."""

from __future__ import annotations

import math

import numpy as np
import pytest

from suite.metrics import binary_accuracy, group_auc, normalized_entropy


def _ne_loop(labels, preds, weights, eps=1e-12):
    ce = total = pos = 0.0
    for y, p, w in zip(labels.tolist(), preds.tolist(), weights.tolist(), strict=False):
        p = min(max(p, eps), 1 - eps)
        ce -= w * (y * math.log(p) + (1 - y) * math.log(1 - p))
        total += w
        pos += w * y
    rate = pos / total
    return ce / total / -(rate * math.log(rate) + (1 - rate) * math.log(1 - rate))


def _auc_pairs(labels, scores):
    wins = pairs = 0.0
    for yi, si in zip(labels, scores, strict=False):
        for yj, sj in zip(labels, scores, strict=False):
            if yi == 1 and yj == 0:
                pairs += 1
                wins += 1.0 if si > sj else 0.5 if si == sj else 0.0
    return wins / pairs


def test_ne_matches_a_loop_and_is_one_at_the_base_rate() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random(200) < 0.3).astype(np.float32)
    p = rng.random(200).astype(np.float32)
    w = rng.integers(1, 4, 200).astype(np.float32)
    assert normalized_entropy(y, p, w) == pytest.approx(_ne_loop(y, p, w), rel=1e-9)
    assert normalized_entropy(y, np.full(200, y.mean())) == pytest.approx(1.0, rel=1e-9)
    assert normalized_entropy(np.ones(5), np.full(5, 0.5)) > 1e6  # clamped base rate, as torchrec's
    assert math.isnan(normalized_entropy(np.ones(5), np.full(5, 0.5), np.zeros(5)))


def test_accuracy_counts_weighted_threshold_hits() -> None:
    y = np.array([1, 0, 1, 0], dtype=np.float32)
    p = np.array([0.5, 0.49, 0.2, 0.9], dtype=np.float32)
    assert binary_accuracy(y, p) == 0.5
    assert binary_accuracy(y, p, np.array([3, 1, 0, 0])) == 1.0


def test_group_auc_is_the_mean_of_per_group_pairwise_aucs() -> None:
    rng = np.random.default_rng(1)
    sizes = np.array([5, 1, 7, 4, 6, 3])
    y = (rng.random(sizes.sum()) < 0.5).astype(np.float32)
    s = np.round(rng.random(sizes.sum()), 1)  # ties inside groups
    y[5] = 1  # the 1-candidate group: one class, skipped
    s[12:16] = 0.3
    y[12:16] = [1, 0, 1, 0]  # all-equal predictions: skipped
    starts = np.cumsum(sizes) - sizes
    expected = []
    for start, size in zip(starts, sizes, strict=False):
        ys, ss = y[start : start + size], s[start : start + size]
        if 0 < ys.sum() < size and len(set(ss)) > 1:
            expected.append(_auc_pairs(ys, ss))
    got, counted = group_auc(y, s, sizes)
    assert counted == len(expected) and counted < len(sizes)
    assert got == pytest.approx(float(np.mean(expected)), rel=1e-12)


def test_group_auc_weighs_groups_equally_not_by_size() -> None:
    y = np.array([1, 0] + [1] + [0] * 9, dtype=np.float32)
    s = np.array([0.9, 0.1] + [0.1] + [0.5] * 9)
    assert group_auc(y, s, [2, 10]) == (pytest.approx(0.5), 2)  # 1.0 and 0.0, averaged
    assert group_auc(y[:2], s[:2], [2]) == (1.0, 1)
    assert math.isnan(group_auc(np.ones(3), s[:3], [3])[0])
    with pytest.raises(ValueError, match="expected 12"):
        group_auc(y, s[:5], [2, 10])
