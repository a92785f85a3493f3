"""Everything the suite knows about each LoadGen scenario, in one table beside the ``Scenario`` enum.

Every reader asks :func:`spec` instead of branching on the scenario itself: the harness (how the
scenario sets LoadGen's ``TestSettings``, how long a run should last, how many samples LoadGen
issues), the results reader (the metric ``result.json`` records), ``check`` (which effective
settings the rule table bounds), ``audit`` and ``submit`` (the field MLPerf's checker and
``verify_performance.py`` read, the summary CSV's units and latency fallback) and ``compare``
(the units of a row). Check, compare and submit read the scenario from the run's record or
LoadGen's detail log, then look it up here; a folder name is only a fallback for a tree without
either (a submission tree has no ``config.json``).

Adding a scenario is one :class:`ScenarioSpec` row here (and its member in ``config.Scenario``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from suite.config import Mode, Scenario, Settings

#: How a scenario's run length is known in advance: LoadGen issues a fixed count at a known rate
#: (``throughput``), or it answers as fast as the SUT does and only the minimum duration is known.
Duration = Literal["throughput", "floor"]


@dataclass(frozen=True)
class ScenarioSpec:
    """One LoadGen scenario: its LoadGen name, how it sets ``TestSettings``, what it reports.

    Attributes:
        scenario: the suite's enum member (valued by LoadGen's name).
        loadgen: the member of ``mlperf_loadgen.TestScenario``.
        metric_name, metric_key, metric_units: the metric ``result.json`` records: its name, the
            detail-log key it is read from, and its units (``queries/s`` as LoadGen's summary
            says, or ``ns`` for a latency).
        submission_field: the detail-log key MLPerf's submission checker and
            ``verify_performance.py`` take as the scenario's result.
        submission_units: the ``Units`` column of MLPerf's summary CSV.
        latency_fallback: a stream scenario's latency key where ``submission_field`` (an early
            stopping estimate) is absent; ``None`` for a throughput scenario.
        compare_units: the units ``suite compare`` shows beside a throughput.
        qps_setting: the ``TestSettings`` attribute the target QPS goes into, if any.
        latency_settings: the (expected latency, percentile) ``TestSettings`` attributes, if any.
        samples_per_query_setting: the ``TestSettings`` attribute of a fixed query size, if any.
        coalesce_setting: the ``TestSettings`` flag that lets LoadGen hand every query already due
            to one issue call when its issue thread runs late (Server), if any.
        duration: how :func:`expected_duration_s` knows the run's length.
        offline_factor: LoadGen issues ``target QPS x min duration x`` this many samples (Offline
            pads by 10%).
        latency_bound: the rule table bounds a latency percentile (not Offline).
        server_latency: the rule table bounds the target latency itself and ``check`` judges the
            SLA (Server).
        min_count_key: the effective setting the rule's min query count bounds: Offline's one
            query must hold that many samples; the others count queries.
    """

    scenario: Scenario
    loadgen: str
    metric_name: str
    metric_key: str
    metric_units: str
    submission_field: str
    submission_units: str
    latency_fallback: str | None
    compare_units: str
    qps_setting: str | None
    latency_settings: tuple[str, str] | None
    samples_per_query_setting: str | None
    duration: Duration
    offline_factor: float
    latency_bound: bool
    server_latency: bool
    min_count_key: str
    coalesce_setting: str | None = None

    def apply(self, ts: Any, settings: Settings) -> None:
        """Set the scenario's own fields of LoadGen's ``TestSettings`` ``ts`` from ``settings``."""
        if self.qps_setting is not None:
            setattr(ts, self.qps_setting, settings.target_qps)
        if self.latency_settings is not None:
            latency, percentile = self.latency_settings
            setattr(ts, latency, settings.target_latency_ns)
            setattr(ts, percentile, settings.target_latency_percentile)
        if self.samples_per_query_setting is not None:
            setattr(ts, self.samples_per_query_setting, settings.samples_per_query)
        if self.coalesce_setting is not None:
            setattr(ts, self.coalesce_setting, settings.coalesce_queries)

    @property
    def latency_metric(self) -> bool:
        """The scenario's metric is a latency (smaller is better), not a throughput."""
        return self.metric_units == "ns"


SCENARIOS: dict[Scenario, ScenarioSpec] = {
    Scenario.OFFLINE: ScenarioSpec(
        scenario=Scenario.OFFLINE,
        loadgen="Offline",
        metric_name="samples_per_second",
        metric_key="result_samples_per_second",
        metric_units="queries/s",
        submission_field="result_samples_per_second",
        submission_units="Samples/s",
        latency_fallback=None,
        compare_units="samples/s",
        qps_setting="offline_expected_qps",
        latency_settings=None,
        samples_per_query_setting=None,
        duration="throughput",
        offline_factor=1.1,
        latency_bound=False,
        server_latency=False,
        min_count_key="effective_samples_per_query",
    ),
    Scenario.SERVER: ScenarioSpec(
        scenario=Scenario.SERVER,
        loadgen="Server",
        metric_name="completed_samples_per_sec",
        metric_key="result_completed_samples_per_sec",
        metric_units="queries/s",
        submission_field="result_completed_samples_per_sec",
        submission_units="Queries/s",
        latency_fallback=None,
        compare_units="queries/s",
        qps_setting="server_target_qps",
        latency_settings=("server_target_latency_ns", "server_target_latency_percentile"),
        samples_per_query_setting=None,
        duration="throughput",
        offline_factor=1.0,
        latency_bound=True,
        server_latency=True,
        min_count_key="effective_min_query_count",
        coalesce_setting="server_coalesce_queries",
    ),
    Scenario.SINGLE_STREAM: ScenarioSpec(
        scenario=Scenario.SINGLE_STREAM,
        loadgen="SingleStream",
        metric_name="90.00_percentile_latency_ns",
        metric_key="result_90.00_percentile_latency_ns",
        metric_units="ns",
        submission_field="early_stopping_latency_ss",
        submission_units="Latency (ms)",
        latency_fallback="result_90.00_percentile_latency_ns",
        compare_units="queries/s (1/latency)",
        qps_setting=None,
        latency_settings=("single_stream_expected_latency_ns", "single_stream_target_latency_percentile"),
        samples_per_query_setting=None,
        duration="floor",
        offline_factor=1.0,
        latency_bound=True,
        server_latency=False,
        min_count_key="effective_min_query_count",
    ),
    Scenario.MULTI_STREAM: ScenarioSpec(
        scenario=Scenario.MULTI_STREAM,
        loadgen="MultiStream",
        metric_name="99.00_percentile_per_query_latency_ns",
        metric_key="result_99.00_percentile_per_query_latency_ns",
        metric_units="ns",
        submission_field="early_stopping_latency_ms",
        submission_units="Latency (ms)",
        latency_fallback="result_99.00_percentile_per_query_latency_ns",
        compare_units="queries/s (1/latency)",
        qps_setting=None,
        latency_settings=("multi_stream_expected_latency_ns", "multi_stream_target_latency_percentile"),
        samples_per_query_setting="multi_stream_samples_per_query",
        duration="floor",
        offline_factor=1.0,
        latency_bound=True,
        server_latency=False,
        min_count_key="effective_min_query_count",
    ),
}


def spec(scenario: Scenario) -> ScenarioSpec:
    """The table row of ``scenario``."""
    return SCENARIOS[scenario]


def by_name(name: str | None) -> ScenarioSpec | None:
    """The row of a scenario named as LoadGen names it (``Offline``...), or ``None`` for any other text.

    For names read from a record, a detail log or a folder: an unknown name is not an error here,
    the caller reports it.
    """
    for row in SCENARIOS.values():
        if row.scenario.value == name:
            return row
    return None


def expected_queries(settings: Settings, total_queries: int) -> int | None:
    """How many queries (samples) LoadGen will issue, from the settings (a user.conf may change it).

    Offline: one query of max(min query count, expected QPS x min duration x 1.1) samples.
    Server: queries arrive at the target until both minimums are met. Accuracy runs issue every
    query once. SingleStream and MultiStream run as fast as the SUT answers: unknown.
    """
    if settings.mode is Mode.ACCURACY:
        return total_queries
    row = spec(settings.scenario)
    if row.duration != "throughput":
        return None
    seconds = settings.min_duration_ms / 1000
    return max(settings.min_query_count, math.ceil(settings.target_qps * seconds * row.offline_factor))


def expected_duration_s(settings: Settings, total_queries: int) -> float:
    """How long the run should take if the SUT keeps up with the settings, for the progress line."""
    row = spec(settings.scenario)
    if settings.mode is Mode.ACCURACY:
        # Server issues an accuracy run's queries at the target rate; the others as fast as answered.
        return total_queries / settings.target_qps if row.server_latency else 0.0
    floor = settings.min_duration_ms / 1000
    if row.duration == "throughput":
        return max(floor, (expected_queries(settings, total_queries) or 0) / settings.target_qps)
    return floor
