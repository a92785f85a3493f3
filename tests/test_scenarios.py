"""The scenario table: one row per LoadGen scenario, and the readers that ask it."""

from __future__ import annotations

import json
from pathlib import Path

import mlperf_loadgen as lg
import pytest

from suite import harness
from suite.audit import RESULT_FIELD
from suite.check.reading import RunContext
from suite.check.runs import check_settings
from suite.config import Mode, RunConfig, Scenario, resolve, rule_settings
from suite.models import ModelSpec
from suite.results import parse_detail
from suite.rules import RuleSet
from suite.scenarios import SCENARIOS, by_name, spec
from suite.tree import RunFolder


def test_every_scenario_has_one_row_named_as_loadgen_names_it() -> None:
    assert set(SCENARIOS) == set(Scenario)
    for scenario, row in SCENARIOS.items():
        assert row.scenario is scenario and row.loadgen == scenario.value
        assert getattr(lg.TestScenario, row.loadgen) is not None
        assert by_name(scenario.value) is row
    assert by_name("offline") is None and by_name(None) is None  # LoadGen's spelling only
    assert RESULT_FIELD == {"Offline": "result_samples_per_second", "Server": "result_completed_samples_per_sec",
                            "SingleStream": "early_stopping_latency_ss", "MultiStream": "early_stopping_latency_ms"}


@pytest.mark.parametrize("scenario", list(Scenario))
def test_the_row_sets_loadgens_test_settings(scenario: Scenario) -> None:
    settings = resolve(RunConfig(model=ModelSpec(name="dlrm-rmc1", scale="tiny"), backend="null", scenario=scenario, target_qps=123.0))
    ts = harness.test_settings(settings, total_queries=1000, user_conf=None)
    row = spec(scenario)
    assert ts.scenario == getattr(lg.TestScenario, row.loadgen)
    if row.qps_setting:
        assert getattr(ts, row.qps_setting) == 123.0
    if row.latency_settings:
        latency, percentile = row.latency_settings
        assert getattr(ts, latency) == settings.target_latency_ns
        assert getattr(ts, percentile) == pytest.approx(settings.target_latency_percentile)
    if row.samples_per_query_setting:
        assert getattr(ts, row.samples_per_query_setting) == settings.samples_per_query


@pytest.mark.parametrize(
    ("samples_per_query", "min_query_count", "found"),
    [(24_576, 1, []), (24_575, 1, ["settings.samples-per-query"]), (24_576, 0, ["settings.min-query-count"])],
    ids=["enough", "samples-per-query", "min-query-count"],
)
def test_offline_needs_mlperfs_24576_samples_per_query(samples_per_query: int, min_query_count: int, found: list[str]) -> None:
    """MLPerf's checker: 'Required minimum samples per query not met by user config' under 24,576
    (dlrm-v2's OFFLINE_MIN_SPQ_SINCE_V4), and 'Required minimum Query Count not met' under 1 (its
    min-queries table), on the detail log of an official Offline run."""
    expected = rule_settings(RuleSet.load("mlperf-v5.1"), "dlrm-v2", Scenario.OFFLINE, Mode.PERFORMANCE, profile="official", variant="99")
    assert expected.seeds is not None
    values = {
        "effective_test_mode": "PerformanceOnly", "effective_scenario": "Offline", "effective_min_duration_ms": 600_000,
        "effective_samples_per_query": samples_per_query, "effective_performance_sample_count": 204_800,
        "effective_min_query_count": min_query_count,
        "qsl_reported_total_count": 330_067, "effective_qsl_rng_seed": expected.seeds[0],
        "effective_sample_index_rng_seed": expected.seeds[1], "effective_schedule_rng_seed": expected.seeds[2],
    }  # fmt: skip
    detail = parse_detail("\n".join(":::MLLOG " + json.dumps({"key": k, "value": v}) for k, v in values.items()))
    run = RunFolder(path=Path("sys/dlrm-v2/Offline/performance/run_1"), mode=Mode.PERFORMANCE, system="sys",
                    benchmark="dlrm-v2-99", scenario="Offline", submission=False)  # fmt: skip
    assert [f.rule for f in check_settings(RunContext(run=run, detail=detail), expected)] == found
