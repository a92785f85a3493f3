"""The rule tables as data: MLPerf v5.1's DLRM-v2 numbers, DeepRecSys's SLA levels, and the
TestSettings the harness builds from them."""

from __future__ import annotations

import pytest

from suite.config import Mode, Scenario, rule_settings
from suite.errors import UnknownNameError
from suite.rules import RuleSet, for_benchmark, for_model

V51_SEEDS = (1780908523862526354, 14771362308971278857, 18209322760996052031)
LOADGEN_6017_SEEDS = (2085463073848966840, 2747215439041700203, 16159082839903944936)


def mlperf(scenario: Scenario, variant: str | None = None, profile: str = "official"):
    return rule_settings(RuleSet.load("mlperf-v5.1"), "dlrm-v2", scenario, Mode.PERFORMANCE, profile=profile, variant=variant)


def test_mlperf_v51_dlrm_v2_is_as_mlperf_states() -> None:
    server, offline = mlperf(Scenario.SERVER), mlperf(Scenario.OFFLINE)
    assert server.loadgen_model == "dlrm-v2"
    assert server.target_latency_ns == 60_000_000 and server.target_latency_percentile == 0.99
    assert server.min_duration_ms == offline.min_duration_ms == 600_000
    # LoadGen 6.0.17's mlperf.conf sets no Server count (LoadGen's default 100); early stopping rules.
    assert server.min_query_count == 100 and server.early_stopping and not offline.early_stopping
    assert offline.min_query_count == 24_576
    assert server.performance_sample_count == offline.performance_sample_count == 204_800
    assert server.seeds == offline.seeds == V51_SEEDS
    assert server.query_size == "mlperf"
    rules = RuleSet.load("mlperf-v5.1")
    assert rules.required_scenarios == ["Offline", "Server"]
    assert rules.compliance == ["TEST01"]
    assert for_model("dlrm-v2") == "mlperf-v5.1"


@pytest.mark.parametrize(("variant", "benchmark", "target"), [(None, "dlrm-v2-99", 0.99), ("99", "dlrm-v2-99", 0.99), ("99.9", "dlrm-v2-99.9", 0.999)])
def test_mlperf_variant_picks_the_benchmark(variant: str | None, benchmark: str, target: float) -> None:
    settings = mlperf(Scenario.OFFLINE, variant)
    assert settings.benchmark == benchmark and settings.accuracy_target == target
    rules = RuleSet.load("mlperf-v5.1")
    assert rules.parse_benchmark(benchmark) == ("dlrm-v2", variant or "99")
    assert for_benchmark(benchmark) == "mlperf-v5.1"


def test_profiles_are_table_entries_over_the_variant() -> None:
    smoke = mlperf(Scenario.SERVER, "99.9", profile="smoke")
    assert smoke.min_duration_ms == 1000 and smoke.min_query_count == 100
    assert smoke.target_latency_ns == 60_000_000 and smoke.accuracy_target == 0.999


PAPER_SLA_MS = {"dlrm-rmc1": 100, "dlrm-rmc2": 400, "dlrm-rmc3": 100, "ncf": 5, "wnd": 25, "mtwnd": 25, "din": 100, "dien": 35}


@pytest.mark.parametrize(("variant", "factor"), [("low", 0.5), ("medium", 1.0), (None, 1.0), ("high", 1.5)])
@pytest.mark.parametrize("model", sorted(PAPER_SLA_MS))
def test_deeprecsys_sla_levels(model: str, variant: str | None, factor: float) -> None:
    rules = RuleSet.load("deeprecsys")
    settings = rule_settings(rules, model, Scenario.SERVER, Mode.PERFORMANCE, profile="official", variant=variant)
    assert settings.target_latency_ns == round(PAPER_SLA_MS[model] * factor * 1_000_000)
    assert settings.target_latency_percentile == 0.95
    assert settings.benchmark == model and settings.seeds == LOADGEN_6017_SEEDS


def test_unknown_variant_names_the_choices() -> None:
    with pytest.raises(UnknownNameError, match=r"'variant' must be one of \['high', 'low', 'medium'\] \(got 'extreme'\)"):
        RuleSet.load("deeprecsys").variant("extreme")
    with pytest.raises(UnknownNameError, match=r"'benchmark' must be one of \['dlrm-v2-99', 'dlrm-v2-99.9'\]"):
        RuleSet.load("mlperf-v5.1").parse_benchmark("dlrm-v2-98")


@pytest.mark.parametrize("scenario", [Scenario.SERVER, Scenario.OFFLINE])
def test_harness_takes_loadgen_settings_from_the_table(scenario: Scenario) -> None:
    from suite.harness import test_settings

    settings = mlperf(scenario, "99.9")
    ts = test_settings(settings, total_queries=330_067, user_conf=None)
    assert (ts.qsl_rng_seed, ts.sample_index_rng_seed, ts.schedule_rng_seed) == V51_SEEDS
    assert ts.min_duration_ms == 600_000
    assert ts.performance_sample_count_override == 204_800
    if scenario is Scenario.SERVER:
        assert ts.server_target_latency_ns == 60_000_000
        assert ts.server_target_latency_percentile == pytest.approx(0.99)
        assert ts.min_query_count == 100
    else:
        assert ts.min_query_count == 24_576
