"""The checks of one run folder: LoadGen's verdict, its effective settings against the rule table,
the SLA, the summary against the detail log, the record against both, then the accuracy checks."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from suite import scenarios
from suite.check.accuracy import check_accuracy
from suite.check.catalogue import START_FROM_DEVICE, Finding, Severity, error
from suite.check.reading import Judge, RunContext, check_structure, expected_settings, judge_for, read_run
from suite.config import Mode, Settings
from suite.errors import SuiteError
from suite.results import DETAIL, SUMMARY, number
from suite.tree import RunFolder

SEED_KEYS = ("qsl_rng_seed", "sample_index_rng_seed", "schedule_rng_seed")
#: MLPerf's checker requires an Offline run's ``effective_min_query_count`` to be at least 1 (its
#: min-queries table; LoadGen's Offline issues one query of all the samples).
OFFLINE_MIN_QUERIES = 1


def check_loadgen(ctx: RunContext) -> list[Finding]:
    """LoadGen's verdict, early stopping, the result, no error in the detail log, no audit.config."""
    detail, run = ctx.detail, ctx.run
    if detail is None:
        return []
    path = run.path / DETAIL
    findings = check_verdict(ctx)
    for warning in detail.warnings:
        if "audit.config" in warning.lower() or "audit config" in warning.lower():
            findings.append(error("settings.audit-config", f"LoadGen applied an audit.config to this run: {warning}", path))
    return findings


def check_verdict(ctx: RunContext) -> list[Finding]:
    """What MLPerf's ``check_performance_dir`` asks of LoadGen's logs beside the settings (an audit's
    performance run too): no error in the detail log, VALID, early stopping met (Server), the result."""
    detail, run = ctx.detail, ctx.run
    if detail is None:
        return []
    path = run.path / DETAIL
    findings = []
    for message in detail.errors:
        findings.append(error("loadgen.error", f"LoadGen logged an error: {message}", path))
    if run.mode is Mode.PERFORMANCE:
        validity = detail.get("result_validity")
        if validity != "VALID":
            reason = detail.get("result_invalid_reason")
            why = f" ({reason})" if reason else ""
            findings.append(error("loadgen.invalid", f"result_validity is {validity!r}, not 'VALID'{why}", path))
        if detail.get("effective_scenario") == "Server" and detail.get("early_stopping_met") is not True:
            findings.append(error("loadgen.early-stopping", f"early_stopping_met is {detail.get('early_stopping_met')!r}", path))
        if validity == "VALID":  # an invalid run lacking its result is loadgen.invalid already
            findings += _check_result(detail.get("effective_scenario"), detail.get, path)
    return findings


def _check_result(scenario: Any, get: Callable[[str], Any], path: Path) -> list[Finding]:
    """A throughput scenario's result is in the detail log, a number: MLPerf's checker reads it
    (``float(mlperf_log[RESULT_FIELD_NEW[scenario]])``) and fails the run where it cannot."""
    row = scenarios.by_name(scenario) if isinstance(scenario, str) else None
    if row is None or row.latency_fallback is not None:
        return []  # no scenario (settings.scenario says so), or a stream scenario's estimate may be absent
    value = get(row.submission_field)
    if number(value) is None:
        return [error("loadgen.result", f"{row.submission_field} is {value!r}, not the {row.loadgen} result MLPerf's checker reads", path)]
    return []


def check_interrupted(ctx: RunContext) -> list[Finding]:
    """A run that a signal stopped: its logs, if any, are not a measurement of the asked run."""
    result = ctx.result
    if result is None or result.status != "interrupted":
        return []
    info = result.interruption
    seconds = number(info.get("loadgen_s"))
    loadgen = info.get("loadgen")
    when = f" after {seconds:.1f} s of LoadGen" if seconds is not None else ""
    logs = {"left running": "; LoadGen was left running, its logs are cut short",
            "not started": "; LoadGen never started"}.get(loadgen, "") if isinstance(loadgen, str) else ""
    return [error("run.interrupted", f"interrupted by {info.get('signal', 'a signal')}{when}{logs}", ctx.run.path / "result.json")]


def check_settings(ctx: RunContext, expected: Settings) -> list[Finding]:
    """The ``effective_*`` settings of the detail log against the rule table."""
    detail, run = ctx.detail, ctx.run
    if detail is None:
        return []
    path = run.path / DETAIL
    get = detail.get
    findings = []
    want_mode = "PerformanceOnly" if run.mode is Mode.PERFORMANCE else "AccuracyOnly"
    if get("effective_test_mode") != want_mode:
        findings.append(error("settings.mode", f"effective_test_mode is {get('effective_test_mode')!r}, want {want_mode!r}", path))
    if get("effective_scenario") != expected.scenario.value:
        findings.append(
            error("settings.scenario", f"effective_scenario is {get('effective_scenario')!r}, want {expected.scenario.value!r}", path)
        )
    if expected.seeds is not None:
        for key, want in zip(SEED_KEYS, expected.seeds, strict=False):
            got = get(f"effective_{key}")
            if got != want:
                findings.append(error("settings.seed", f"{key} is wrong, expected={want}, found={got}", path))
    if run.mode is Mode.ACCURACY:
        return findings

    def at_least(rule: str, key: str, want: float, unit: str = "") -> None:
        got = number(get(key))
        if got is None or got < want:
            findings.append(error(rule, f"{key} is {get(key)!r}{unit}, the rule requires at least {want:g}{unit}", path))

    at_least("settings.min-duration", "effective_min_duration_ms", expected.min_duration_ms)
    row = scenarios.spec(expected.scenario)
    if row.min_count_key == "effective_samples_per_query":  # Offline's one query holds the samples
        at_least("settings.samples-per-query", row.min_count_key, expected.min_query_count)
        # MLPerf's checker still reads Offline's query count (its min-queries table: Offline 1).
        at_least("settings.min-query-count", "effective_min_query_count", OFFLINE_MIN_QUERIES)
    elif not expected.early_stopping:
        # MLPerf's checker reads no query count where early stopping judges the run's length.
        at_least("settings.min-query-count", row.min_count_key, expected.min_query_count)
    if row.samples_per_query_setting is not None and get("effective_samples_per_query") != expected.samples_per_query:
        findings.append(
            error(
                "settings.samples-per-query",
                f"effective_samples_per_query is {get('effective_samples_per_query')!r}, the rule says {expected.samples_per_query}",
                path,
            )
        )
    if row.server_latency:
        latency = number(get("effective_target_latency_ns"))
        if latency is None or latency > expected.target_latency_ns:
            findings.append(
                error(
                    "settings.target-latency",
                    f"effective_target_latency_ns is {get('effective_target_latency_ns')!r}, the rule allows at most {expected.target_latency_ns}",
                    path,
                )
            )
    if row.latency_bound:
        pct = number(get("effective_target_latency_percentile"))
        if pct is None or pct + 1e-9 < expected.target_latency_percentile:
            findings.append(
                error(
                    "settings.latency-percentile",
                    f"effective_target_latency_percentile is {get('effective_target_latency_percentile')!r}, "
                    f"the rule requires {expected.target_latency_percentile:g}",
                    path,
                )
            )
    total = number(get("qsl_reported_total_count")) or 0
    if expected.dataset_size:
        # MLPerf's rule: at least the rule's count, however few samples the dataset holds.
        want_psc: float = expected.performance_sample_count
    else:
        want_psc = min(expected.performance_sample_count or total, total) if total else expected.performance_sample_count
    at_least("settings.performance-sample-count", "effective_performance_sample_count", want_psc)
    return findings


def check_division(ctx: RunContext, judge: Judge) -> list[Finding]:
    """A run whose query sizes are not the rule set's closed-division ones is open division only
    (a warning: ``submit --division closed`` refuses it)."""
    closed = judge.rules.closed_query_size
    settings = ctx.config.settings if ctx.config is not None else None
    recorded = settings.query_size if settings is not None else None
    if closed is None or recorded is None or recorded == closed:
        return []
    return [
        Finding(
            "settings.query-size",
            Severity.WARNING,
            f"query sizes {recorded!r} are not {judge.rules.name}'s closed-division {closed!r} (MLPerf's quantile "
            "distribution): this result is open division",
            str(ctx.run.path / "config.json"),
        )
    ]


def check_dataset_size(ctx: RunContext, expected: Settings) -> list[Finding]:
    """An accuracy run covers the rule's whole dataset (MLPerf's dataset-size: LoadGen's QSL, and
    its accuracy sample count, are exactly that many samples)."""
    detail, run = ctx.detail, ctx.run
    if detail is None or run.mode is not Mode.ACCURACY or not expected.dataset_size:
        return []
    findings = []
    for key in ("qsl_reported_total_count", "effective_accuracy_sample_count"):
        got = detail.get(key)
        if got is not None and got != expected.dataset_size:
            findings.append(
                error(
                    "accuracy.coverage",
                    f"accuracy run does not cover all dataset: {key} is {got!r}, dataset size {expected.dataset_size}",
                    run.path / DETAIL,
                )
            )
    return findings


def check_sla(ctx: RunContext, expected: Settings) -> list[Finding]:
    """Server: the latency percentile the rule names is within the rule's target."""
    detail, run = ctx.detail, ctx.run
    if detail is None or run.mode is not Mode.PERFORMANCE or not scenarios.spec(expected.scenario).server_latency:
        return []
    key = f"result_{100 * expected.target_latency_percentile:.2f}_percentile_latency_ns"
    got = number(detail.get(key))
    path = run.path / DETAIL
    if got is None:
        return [error("sla.latency", f"{key} is not in the detail log", path)]
    if got > expected.target_latency_ns:
        return [
            error(
                "sla.latency",
                f"p{100 * expected.target_latency_percentile:g} latency {got / 1e6:.3f} ms is over the "
                f"{expected.target_latency_ns / 1e6:g} ms target",
                path,
            )
        ]
    return []


def _close(a: float, b: float, rel: float = 1e-3, abs_: float = 0.011) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=abs_)


def check_summary(ctx: RunContext) -> list[Finding]:
    """mlperf_log_summary.txt tells the same story as mlperf_log_detail.txt."""
    detail, summary, run = ctx.detail, ctx.summary, ctx.run
    if detail is None or summary is None:
        return []
    path = run.path / SUMMARY
    get = detail.get
    findings = []

    def differ(label: str, got: Any, want: Any) -> None:
        findings.append(error("consistency.summary-detail", f"summary says {label} {got!r}, detail says {want!r}", path))

    errors = summary.get("errors")
    if errors is not None and errors.isdigit() and int(errors) != len(detail.errors):
        differ("errors", int(errors), len(detail.errors))
    if run.mode is Mode.ACCURACY:
        return findings
    pairs: list[tuple[str, str]] = [("Scenario", "effective_scenario"), ("Mode", "effective_test_mode"), ("Result is", "result_validity")]
    for label, key in pairs:
        if label in summary and summary[label] != str(get(key)):
            differ(label, summary[label], get(key))
    numeric = [
        ("Completed samples per second", "result_completed_samples_per_sec"),
        ("Samples per second", "result_samples_per_second"),
        ("Scheduled samples per second", "result_scheduled_samples_per_sec"),
        ("Min latency (ns)", "result_min_latency_ns"),
        ("Max latency (ns)", "result_max_latency_ns"),
        ("Mean latency (ns)", "result_mean_latency_ns"),
        *((f"{p} percentile latency (ns)", f"result_{p}_percentile_latency_ns") for p in ("50.00", "90.00", "95.00", "97.00", "99.00", "99.90")),
        ("min_duration (ms)", "effective_min_duration_ms"),
        ("min_query_count", "effective_min_query_count"),
        ("target_latency (ns)", "effective_target_latency_ns"),
        ("samples_per_query", "effective_samples_per_query"),
        ("performance_sample_count", "effective_performance_sample_count"),
        *((key, f"effective_{key}") for key in SEED_KEYS),
    ]
    for label, key in numeric:
        if label not in summary or get(key) is None:
            continue
        try:
            got = float(summary[label])
        except ValueError:
            differ(label, summary[label], get(key))
            continue
        want = number(get(key))
        if want is None:
            continue
        exact = key.endswith("_ns") or key.endswith("seed") or key.startswith("effective_")
        if (got != want and not _close(got, want, rel=1e-15, abs_=0.0)) if exact else not _close(got, want):
            differ(label, summary[label], get(key))
    return findings


def check_config(ctx: RunContext, expected: Settings) -> list[Finding]:
    """config.json and result.json agree with the folder and the logs (model, scenario, mode, backend)."""
    run, config, result, detail = ctx.run, ctx.config, ctx.result, ctx.detail
    findings = []
    if config is not None:
        path = run.path / "config.json"
        cfg = config.config
        model = cfg.model.name
        if run.benchmark not in (model, config.benchmark, expected.benchmark):
            findings.append(error("consistency.config", f"config.json's model {model!r} is not the folder's {run.benchmark!r}", path))
        if cfg.scenario != run.scenario:
            findings.append(error("consistency.config", f"config.json's scenario {cfg.scenario!r} is not the folder's {run.scenario!r}", path))
        if cfg.mode != run.mode.value:
            findings.append(error("consistency.config", f"config.json's mode {cfg.mode!r} is not the folder's {run.mode.value!r}", path))
        if cfg.system not in (None, run.system):
            findings.append(error("consistency.config", f"config.json's system {cfg.system!r} is not the folder's {run.system!r}", path))
        if cfg.audit:
            findings.append(error("consistency.config", f"config.json records a {cfg.audit} audit run outside its audit folder", path))
        queries = config.dataset.queries if config.dataset is not None else None
        if detail is not None and queries is not None and detail.get("qsl_reported_total_count") != queries:
            findings.append(
                error(
                    "consistency.config",
                    f"config.json's dataset has {queries} queries, LoadGen's QSL reported {detail.get('qsl_reported_total_count')!r}",
                    path,
                )
            )
    if result is not None:
        path = run.path / "result.json"
        if config is not None and result.config != config.config:
            findings.append(error("consistency.result", "result.json's config is not config.json's", path))
        backend = result.backend.name if result.backend is not None else None
        wanted = config.config.backend if config is not None else None
        if wanted is not None and backend not in (None, wanted):
            findings.append(error("consistency.result", f"result.json's backend {backend!r} is not config.json's {wanted!r}", path))
        if detail is not None and run.mode is Mode.PERFORMANCE:
            claimed = result.performance.validity if result.performance is not None else None
            if claimed is not None and claimed != detail.get("result_validity"):
                findings.append(
                    error("consistency.result", f"result.json says {claimed!r}, the detail log {detail.get('result_validity')!r}", path)
                )
        if result.errors:
            findings.append(error("consistency.result", f"result.json records run errors: {result.errors[0]}", path))
        backend_extra = result.backend.extra if result.backend is not None else {}
        if backend_extra.get("start_from_device") is True:
            findings.append(Finding("settings.start-from-device", Severity.INFO, START_FROM_DEVICE, str(path)))
    return findings


def run_findings(run: RunFolder, rules: str | None, profile: str | None) -> tuple[list[Finding], Judge | None]:
    """Every check of one run folder, and the judge the run was held to (kept for the tree checks)."""
    findings = check_structure(run)
    ctx = read_run(run, findings)
    judge, problems = judge_for(ctx, rules, profile)
    findings += problems
    findings += check_interrupted(ctx)
    findings += check_loadgen(ctx)
    findings += check_summary(ctx)
    if judge is None:
        return findings, judge
    # The record names the scenario; only a tree without one (a submission) is read by its folder name.
    named = ctx.config.config.scenario if ctx.config is not None else run.scenario
    row = scenarios.by_name(named)
    if row is None:
        return [*findings, error("settings.scenario", f"folder {run.scenario!r} is not a LoadGen scenario", run.path)], judge
    scenario = row.scenario
    try:
        expected = expected_settings(judge, scenario, run.mode)
    except SuiteError as exc:
        return [*findings, error("rules.unknown", str(exc), run.path)], judge
    findings += check_settings(ctx, expected)
    findings += check_sla(ctx, expected)
    findings += check_dataset_size(ctx, expected)
    findings += check_division(ctx, judge)
    findings += check_config(ctx, expected)
    findings += check_accuracy(ctx, expected)
    return findings, judge
