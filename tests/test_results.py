"""Reading LoadGen's logs back, and the AUC that the accuracy gate rests on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from suite.metrics import auc, expected_auc
from suite.results import read_detail, score_accuracy


def test_auc_matches_hand_computed_values() -> None:
    assert auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])) == pytest.approx(0.75)
    assert auc(np.array([0, 1, 0, 1]), np.array([0.5, 0.5, 0.5, 0.5])) == pytest.approx(0.5)
    assert auc(np.array([1, 1, 0, 0]), np.array([0.9, 0.8, 0.2, 0.1])) == pytest.approx(1.0)
    assert np.isnan(auc(np.array([1, 1]), np.array([0.2, 0.3])))


def test_expected_auc_agrees_with_sampled_labels() -> None:
    rng = np.random.default_rng(0)
    z = rng.normal(size=200_000)
    p = 1 / (1 + np.exp(-(z / 0.7 - 1.4)))
    labels = rng.random(z.size) < p
    assert expected_auc(z, p) == pytest.approx(auc(labels, z), abs=0.005)


def test_detail_log_parsing_tolerates_junk(tmp_path: Path) -> None:
    path = tmp_path / "mlperf_log_detail.txt"
    path.write_text(
        ':::MLLOG {"key": "result_validity", "value": "VALID", "metadata": {"is_error": false}}\n'
        "garbage line\n"
        ':::MLLOG {"key": "error_runtime", "value": "Ending early", "metadata": {"is_error": true}}\n'
        ":::MLLOG {not json\n"
        ':::MLLOG {"key": "result_validity", "value": "INVALID", "metadata": {}}\n'
    )
    detail = read_detail(path)
    assert detail.get("result_validity") == "VALID"
    assert detail.errors == ["error_runtime: Ending early"]
    assert detail.unparsed_lines == 2


def test_score_accuracy_joins_by_query_and_checks_lengths() -> None:
    offsets = np.array([0, 2, 5])
    labels = np.array([[0], [1], [1], [0], [1]], dtype=np.int8)
    good = {0: np.array([0.1, 0.9], np.float32), 1: np.array([0.8, 0.2, 0.7], np.float32)}
    report = score_accuracy(good, offsets, labels, [1.0], 0.99)
    assert report.mean_auc == pytest.approx(1.0) and report.passed
    assert report.text().splitlines()[0] == "AUC=100.000%, accuracy=100.000%, good=5, total=5, queries=2"
    with pytest.raises(ValueError, match="query 1: 2 scores for 3 items x 1 tasks"):
        score_accuracy({0: good[0], 1: good[1][:2]}, offsets, labels, [1.0], 0.99)
    partial = score_accuracy({0: good[0]}, offsets, labels, [1.0], 0.99)
    assert not partial.passed
