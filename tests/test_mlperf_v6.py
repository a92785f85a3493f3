"""MLPerf v6.0 (dlrm-v3): the rule table, accuracy.txt's metrics and gate, TEST08's verification."""

from __future__ import annotations

import math

import numpy as np
import pytest

from suite import mlperf_v6 as v6
from suite.check import RULES
from suite.config import Mode, Scenario, rule_settings
from suite.rules import RuleSet, available, for_benchmark, for_model

V60_SEEDS = (2465351861681999779, 14276810075590677512, 3936089224930324775)


def test_mlperf_v60_dlrm_v3_is_as_mlperf_states() -> None:
    rules = RuleSet.load("mlperf-v6.0")
    server = rule_settings(rules, "dlrm-v3", Scenario.SERVER, Mode.PERFORMANCE, profile="official")
    offline = rule_settings(rules, "dlrm-v3", Scenario.OFFLINE, Mode.PERFORMANCE, profile="official")
    assert "mlperf-v6.0" in available()
    assert server.benchmark == offline.benchmark == "dlrm-v3" and server.loadgen_model == "dlrm-v3"
    assert server.target_latency_ns == 80_000_000 and server.target_latency_percentile == 0.99
    assert server.seeds == offline.seeds == V60_SEEDS
    assert server.accuracy_target == offline.accuracy_target == 0.999
    # The checker's 349823, not the README's 34,996.
    assert server.performance_sample_count == offline.dataset_size == offline.min_query_count == 349_823
    assert server.early_stopping and not offline.early_stopping
    assert rules.compliance == ["TEST08"] and rules.required_scenarios == ["Offline", "Server"]
    assert rules.meta["mlperf_reference"] == {"ne": 86.687, "accuracy": 69.651, "gauc": 78.663}
    assert for_model("dlrm-v3") == "mlperf-v6.0" and for_benchmark("dlrm-v3") == "mlperf-v6.0"
    assert for_benchmark("dlrm-v2-99.9") == "mlperf-v5.1"
    smoke = rule_settings(rules, "dlrm-v3", Scenario.OFFLINE, Mode.PERFORMANCE, profile="smoke")
    assert smoke.dataset_size == 0 and smoke.min_query_count == 1


def _library(requests: int = 40, k: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.random((requests, k)).astype(np.float32)
    labels = (rng.random((requests, k)) < p).astype(np.int8)
    return np.arange(requests + 1) * k, labels.reshape(-1), p


def test_report_round_trips_and_matches_the_metrics() -> None:
    offsets, labels, p = _library()
    responses = {i: p[i] for i in range(len(p))}
    ref = v6.Reference(0.9, 0.6, 0.7, "test")
    report = v6.score(responses, offsets, labels, ref, 0.999)
    values = v6.parse_report(report.text())
    assert set(values) == set(v6.METRICS)
    assert values["gauc"] == pytest.approx(v6.group_auc(labels, p.reshape(-1), np.full(40, 16))[0], abs=1e-9)
    assert values["ne"] == pytest.approx(v6.normalized_entropy(labels, p.reshape(-1)), abs=1e-9)
    # The checker's patterns read the same lines.
    assert report.text().startswith("metric/lifetime_ne/rating: ")
    assert report.requests == report.total_requests == 40 and report.candidates == 640
    # Pairs (prediction, label) score the same; pairs with other labels are refused.
    pairs = {i: np.stack([p[i], labels[16 * i : 16 * i + 16].astype(np.float32)], axis=1) for i in range(40)}
    assert v6.score(pairs, offsets, labels, ref, 0.999).metrics == report.metrics
    pairs[3][:, 1] = 1 - pairs[3][:, 1]
    with pytest.raises(ValueError, match="request 3: the labels"):
        v6.score(pairs, offsets, labels, ref, 0.999)


def test_gate_is_a_band_for_ne_and_a_floor_for_the_others() -> None:
    ref = v6.MLPERF_REFERENCE
    ok = {"ne": 0.86755, "accuracy": 0.69643, "gauc": 0.78629}  # a published v6.0 result
    assert v6.gate(ok, ref, 0.999) == []
    low_ne = dict(ok, ne=0.86687 * 0.999 - 1e-4)  # "better" NE: the checker's floor rejects it
    high_ne = dict(ok, ne=0.86687 / 0.999 + 1e-4)
    assert [r for r, _ in v6.gate(low_ne, ref, 0.999)] == ["accuracy.v6-ne"]
    assert [r for r, _ in v6.gate(high_ne, ref, 0.999)] == ["accuracy.v6-ne"]
    bad = dict(ok, accuracy=0.69651 * 0.999 - 1e-5, gauc=float("nan"))
    assert [r for r, _ in v6.gate(bad, ref, 0.999)] == ["accuracy.v6-accuracy", "accuracy.v6-gauc"]
    assert set(RULES) >= {f"accuracy.v6-{m}" for m in v6.METRICS}


def test_teacher_reference_passes_its_own_gate_and_a_noisy_model_fails() -> None:
    offsets, labels, p = _library(200, 32, 1)
    meta = {**v6.teacher_reference(labels.reshape(200, 32), p, "test"), "source": "synthetic"}
    ref = v6.Reference.from_meta(meta)
    assert ref is not None
    assert v6.score({i: p[i] for i in range(200)}, offsets, labels, ref, 0.999).passed
    noisy = np.clip(p + np.random.default_rng(2).normal(0, 0.1, p.shape), 0, 1).astype(np.float32)
    report = v6.score({i: noisy[i] for i in range(200)}, offsets, labels, ref, 0.999)
    assert report.status == "FAIL" and "result=FAIL" in report.text()
    partial = v6.score({i: p[i] for i in range(100)}, offsets, labels, ref, 0.999)
    assert not partial.passed and "answered 100 of 200" in partial.text()


def _ne_script(preds: np.ndarray, labels: np.ndarray) -> float:
    """run_verification.py's compute_ne, written out with unit weights."""
    eps = 1e-7
    p = np.clip(preds.astype(np.float64), eps, 1 - eps)
    y = np.clip(labels.astype(np.float64), eps, 1 - eps)
    ce = -np.sum(y * np.log(p) + (1 - y) * np.log(1 - p))
    rate = np.clip(np.mean(y), eps, 1 - eps)
    return float(ce / ((-rate * math.log(rate) - (1 - rate) * math.log(1 - rate)) * len(y)))


def _acc_layout(key: tuple[int, int], preds: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """MLPerf v6.0's accuracy-mode response: ts_idx, query_idx, predictions, labels, weights, count."""
    n = len(preds)
    return np.concatenate([key, preds, labels, np.ones(n), [n]]).astype(np.float32)


def _perf_layout(key: tuple[int, int], preds: np.ndarray) -> np.ndarray:
    return np.concatenate([key, preds]).astype(np.float32)


def test_test08_matches_by_key_and_compares_ne() -> None:
    offsets, labels, p = _library(30, 8, 3)
    keys = np.stack([np.repeat(np.arange(3), 10), np.tile(np.arange(10), 3)], axis=1)
    keys = v6.request_keys(30, {"keys": keys})
    labels_of = {(int(a), int(b)): labels[8 * i : 8 * i + 8] for i, (a, b) in enumerate(keys)}
    assert v6.request_ne(p[4], labels_of[(0, 4)]) == pytest.approx(_ne_script(p[4], labels_of[(0, 4)]), rel=1e-6)
    accuracy_log = {i: _acc_layout(tuple(keys[i]), p[i], labels[8 * i : 8 * i + 8]) for i in range(30)}
    accuracy_run = v6.samples(accuracy_log, offsets)
    audit = v6.samples({i: _perf_layout(tuple(keys[i]), p[i]) for i in (2, 11, 29)}, offsets)
    assert [(s.ts_idx, s.query_idx) for s in audit] == [(0, 2), (1, 1), (2, 9)]  # keys read from the responses
    lines, ok = v6.verify_test08(accuracy_run, audit, labels_of)
    assert ok and lines[-2] == "TEST PASS" and "num_matched = 3" in lines
    drifted = [v6.Sample(s.ts_idx, s.query_idx, np.clip(s.predictions * 0.5, 0, 1)) for s in audit]
    lines, ok = v6.verify_test08(accuracy_run, drifted, labels_of)
    assert not ok and "num_ne_mismatch = 3" in lines and lines[-2] == "TEST FAIL"
    stranger = [v6.Sample(9, 9, p[0])]
    lines, ok = v6.verify_test08(accuracy_run, stranger, {**labels_of, (9, 9): labels[:8]})
    assert not ok and "num_unmatched = 1" in lines
    assert v6.request_keys(3, {}).tolist() == [[0, 0], [0, 1], [0, 2]]
    with pytest.raises(ValueError, match="neither MLPerf's accuracy layout"):
        v6.samples({0: p[0]}, offsets)  # bare predictions carry no key


def test_test08_fails_when_two_requests_swap_their_keys() -> None:
    """The audit's answers are matched to the accuracy run's by the (ts_idx, query_idx) they carry:
    two responses whose keys are swapped are compared with the wrong requests' labels and fail."""
    offsets, labels, p = _library(30, 8, 4)
    keys = np.stack([np.repeat(np.arange(3), 10), np.tile(np.arange(10), 3)], axis=1)
    labels_of = {(int(a), int(b)): labels[8 * i : 8 * i + 8] for i, (a, b) in enumerate(keys)}
    accuracy_run = v6.samples({i: _acc_layout(tuple(keys[i]), p[i], labels[8 * i : 8 * i + 8]) for i in range(30)}, offsets)
    honest = {i: _perf_layout(tuple(keys[i]), p[i]) for i in (3, 14)}
    assert v6.verify_test08(accuracy_run, v6.samples(honest, offsets), labels_of)[1]
    swapped = {3: _perf_layout(tuple(keys[14]), p[3]), 14: _perf_layout(tuple(keys[3]), p[14])}
    lines, ok = v6.verify_test08(accuracy_run, v6.samples(swapped, offsets), labels_of)
    assert not ok and "num_ne_mismatch = 2" in lines and lines[-2] == "TEST FAIL"


def test_the_v6_submission_format_is_registered_and_v51_keeps_its_tree() -> None:
    from pathlib import Path

    from suite.submission import for_rules

    v60, v51 = for_rules("mlperf-v6.0"), for_rules("mlperf-v5.1")
    org = Path("closed/Acme")
    assert v60.compliance_dir(org, "sys", "dlrm-v3", "Offline") == org / "results/sys/dlrm-v3/Offline"
    assert v60.measurements_dir(org, "sys", "dlrm-v3", "Offline") == org / "results/sys/dlrm-v3/Offline"
    assert (v60.code_dir, v60.measurements_file("sys"), v60.version) == ("src", "measurements.json", "v6.0")
    assert v60.audit_sets["TEST08"] == {"verify_accuracy.txt", "accuracy/mlperf_log_accuracy.json"}
    assert v51.compliance_dir(org, "sys", "dlrm-v2-99", "Offline") == org / "compliance/sys/dlrm-v2-99/Offline"
    assert v51.measurements_dir(org, "sys", "dlrm-v2-99", "Offline") == org / "measurements/sys/dlrm-v2-99/Offline"
    assert (v51.code_dir, v51.measurements_file("sys"), "TEST08" in v51.audit_sets) == ("code", "sys.json", False)
