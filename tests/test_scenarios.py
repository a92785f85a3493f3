"""The scenario table: one row per LoadGen scenario, and the readers that ask it."""

from __future__ import annotations

import mlperf_loadgen as lg
import pytest

from suite.audit import RESULT_FIELD
from suite.config import RunConfig, Scenario, resolve
from suite import harness
from suite.models import ModelSpec
from suite.scenarios import SCENARIOS, by_name, spec


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
