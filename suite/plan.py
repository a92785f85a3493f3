"""How long an official submission of one model takes on one machine (``suite plan``).

The amount of work comes from the rule table, under its ``official`` profile:
- the required scenarios;
- for each scenario, a performance run, an accuracy run and each compliance audit's performance run;
- each run's minimum duration and sample count, and the accuracy run's dataset size;
- LoadGen's Offline padding (expected QPS x min duration x 1.1 samples).

The speed comes from one measured run: its items per second, turned into samples per second at the
closed division's mean query size. Nothing here runs a model. Load, warm-up and data generation
are not counted: the plan says so.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from suite import scenarios
from suite.config import Mode, Scenario, rule_settings
from suite.datasets.queries import MLPERF_QUANTILES
from suite.errors import ConfigError
from suite.rules import RuleSet


@dataclass(frozen=True)
class Step:
    """One LoadGen run of the plan: what it is, how many samples LoadGen issues, how long it lasts."""

    scenario: str
    run: str
    samples: int
    seconds: float
    why: str


@dataclass(frozen=True)
class Plan:
    """The runs of an official submission of ``benchmark`` at ``samples_per_s`` (Offline) and
    ``server_qps`` (Server's target), and their sum."""

    benchmark: str
    items_per_sample: float
    samples_per_s: float
    server_qps: float
    steps: tuple[Step, ...]

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.steps)


def submission_plan(rules: RuleSet, model: str, items_per_s: float, *, server_fraction: float, variant: str | None = None) -> Plan:
    """The plan of an official ``model`` submission under ``rules`` at ``items_per_s`` (measured).

    A sample is a query of the closed division's mean size (MLPerf's quantiles: 270 items). Server
    runs at ``server_fraction`` of the Offline rate (its target QPS).
    """
    if not items_per_s > 0:
        raise ConfigError(f"'items_per_s' must be above 0 (got {items_per_s!r})")
    if not 0 < server_fraction <= 1:
        raise ConfigError(f"'server_fraction' must be in (0, 1] (got {server_fraction!r})")
    per_sample = float(statistics.mean(MLPERF_QUANTILES)) if rules.closed_query_size == "mlperf" else 1.0
    rate = items_per_s / per_sample
    steps: list[Step] = []
    benchmark = model
    for name in rules.required_scenarios:
        scenario = Scenario(name)
        row = scenarios.spec(scenario)
        qps = rate * server_fraction if row.server_latency else rate
        perf = rule_settings(rules, model, scenario, Mode.PERFORMANCE, profile="official", variant=variant, target_qps=qps)
        acc = rule_settings(rules, model, scenario, Mode.ACCURACY, profile="official", variant=variant, target_qps=qps)
        benchmark = perf.benchmark
        issued = scenarios.expected_queries(perf, acc.dataset_size) or 0
        seconds = scenarios.expected_duration_s(perf, acc.dataset_size)
        floor = perf.min_duration_ms / 1000
        # Offline pads its one query (x 1.1), or its sample minimum outlasts the floor; Server stops at it.
        why = f"{issued:,} samples at {qps:,.1f}/s" if seconds > floor + 1 else f"min duration {floor:g} s"
        for run in ("performance", *(f"{test} performance" for test in rules.compliance)):
            steps.append(Step(name, run, issued, seconds, why))
        if not acc.dataset_size:
            raise ConfigError(f"{rules.name} sets no dataset size for {model}: an accuracy run's length is unknown")
        paced = "Server's target QPS" if row.server_latency else "as fast as answered"
        steps.append(Step(name, "accuracy", acc.dataset_size, acc.dataset_size / qps, f"{acc.dataset_size:,} samples, {paced}"))
    return Plan(benchmark, per_sample, rate, rate * server_fraction, tuple(steps))


def render(plan: Plan, source: str) -> str:
    """The plan as a table, saying what was measured and what is computed."""
    lines = [
        f"{plan.benchmark}: an official submission at {plan.samples_per_s:,.2f} samples/s "
        f"({plan.samples_per_s * plan.items_per_sample:,.0f} items/s, {plan.items_per_sample:g} items a sample), "
        f"Server at {plan.server_qps:,.2f} queries/s",
        f"measured: the rate, from {source}; computed: everything below",
        f"{'scenario':<9} {'run':<22} {'samples':>12} {'time':>10}  why",
    ]
    for s in plan.steps:
        lines.append(f"{s.scenario:<9} {s.run:<22} {s.samples:>12,} {_duration(s.seconds):>10}  {s.why}")
    lines.append(f"{'total':<9} {'':<22} {'':>12} {_duration(plan.seconds):>10}  without loading, warm-up and generating the data")
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
