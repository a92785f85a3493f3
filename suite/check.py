"""``suite check``: judge result folders by the rule tables; findings are data.

A PATH is a run folder (``.../<Scenario>/performance/run_1`` or ``.../<Scenario>/accuracy``), a
results tree (``<output>/<system>/<model>/<Scenario>/...``) or a submission tree in MLPerf's
layout (``closed/<Org>/results/<system>/<benchmark>/<Scenario>/...``, compliance under
``closed/<Org>/compliance/<system>/<benchmark>/<Scenario>/TEST01``). Every check is a pure
function from what a run wrote (plus the dataset's labels) and its rule table to a list of
:class:`Finding`; nothing here raises on bad input, it reports it.

Rule ids are stable (tests and scripts match on them); :data:`RULES` lists them with what they mean.
A run is judged by the rule set, variant and profile its ``config.json`` records, unless
``--rules`` / ``--profile`` say otherwise; a run without one (a submission tree) by the rule set
whose benchmark names include its benchmark folder, under the ``official`` profile.
"""

from __future__ import annotations

import enum
import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from suite.config import Mode, Scenario, Settings, rule_settings
from suite.errors import SuiteError
from suite.results import (
    ACCURACY_LOG, DETAIL, MLLOG_PREFIX, SUMMARY, DetailLog, number, parse_accuracy_log, read_detail, read_summary,
)
from suite.rules import RuleSet, available, for_benchmark
from suite.submission import TRUNCATION_MARK


class Severity(enum.StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


#: What ``suite check`` says about a run whose inputs started in device memory.
START_FROM_DEVICE = (
    "inputs started in accelerator memory (start_from_device): no host-to-device copy was timed; MLPerf "
    "accepts this only when the submission documents network ingress into the accelerator, bypassing the "
    "host CPU, at the measured samples/s times the input bytes per sample (inference rules, ingress bandwidth)"
)

#: Every rule id ``suite check`` reports, with what it means.
RULES: dict[str, str] = {
    "structure.not-a-result": "the path holds no run folder",
    "structure.missing-file": "a file the run folder must hold is missing",
    "structure.empty-file": "a file the run folder must hold is empty",
    "structure.unreadable": "a log or JSON file cannot be parsed (binary, truncated, not JSON)",
    "structure.missing-run": "a scenario lacks its performance or accuracy run",
    "structure.missing-scenario": "a benchmark lacks a scenario the rule set requires",
    "rules.unknown": "no rule set, variant or profile fits the run",
    "loadgen.invalid": "LoadGen's verdict (result_validity) is not VALID",
    "loadgen.early-stopping": "LoadGen's early-stopping criterion was not met",
    "loadgen.error": "the detail log holds a LoadGen error (e.g. 'Ending early')",
    "settings.audit-config": "an audit.config overrode the settings of a non-audit run",
    "settings.mode": "LoadGen's test mode is not the folder's (performance/accuracy)",
    "settings.scenario": "LoadGen's scenario is not the folder's",
    "settings.min-duration": "effective_min_duration_ms is below the rule",
    "settings.min-query-count": "effective_min_query_count is below the rule",
    "settings.samples-per-query": "effective_samples_per_query breaks the rule",
    "settings.target-latency": "effective_target_latency_ns is above the rule",
    "settings.latency-percentile": "effective_target_latency_percentile is below the rule",
    "settings.performance-sample-count": "effective_performance_sample_count is below the rule",
    "settings.seed": "an effective RNG seed is not the rule's",
    "sla.latency": "the latency percentile the rule names is over its target",
    "accuracy.report": "accuracy.txt lacks MLPerf's AUC= line",
    "accuracy.log": "the accuracy log does not fit the dataset",
    "accuracy.labels": "the dataset's labels are not available to recompute the AUC",
    "accuracy.mismatch": "the AUC recomputed from the accuracy log differs from accuracy.txt",
    "accuracy.gate": "the AUC is below the rule's fraction of the reference AUC",
    "accuracy.coverage": "the accuracy run did not cover the whole dataset",
    "accuracy.truncated": "the accuracy log is truncated and accuracy.txt has no hash= line",
    "accuracy.hash": "the accuracy log's sha256 is not accuracy.txt's hash=",
    "accuracy.not-recomputed": "the accuracy log is truncated (with a hash); the AUC was not recomputed",
    "consistency.summary-detail": "mlperf_log_summary.txt disagrees with mlperf_log_detail.txt",
    "consistency.config": "config.json disagrees with the logs or the folder",
    "consistency.result": "result.json disagrees with the logs or config.json",
    "settings.start-from-device": "the backend kept the query library in accelerator memory (MLPerf's start_from_device)",
    "compliance.missing": "a compliance audit the rule set requires is missing",
    "compliance.failed": "a compliance audit failed, or its verify file says PASS where the logs do not",
    "submission.layout": "a submission tree lacks a folder MLPerf requires (code/, calibration.md...) or holds extra files",
    "submission.file-set": "a submission folder does not hold exactly MLPerf's file set",
    "submission.system": "systems/<system>.json lacks a required field, leaves one empty, or disagrees with the tree",
    "submission.measurements": "measurements/.../<Scenario>/ lacks user.conf, README.md or a complete measurements JSON",
    "submission.name": "a file or folder name has whitespace, a path separator or a leading '.'",
    "submission.size": "a file is over 50 MB, or an accuracy log over 10 KiB",
    "submission.symlink": "a submission tree holds a symlink",
    "submission.empty-dir": "a submission tree holds an empty folder",
}

PERFORMANCE_FILES = (DETAIL, SUMMARY)
ACCURACY_FILES = (DETAIL, SUMMARY, ACCURACY_LOG, "accuracy.txt")
#: Our own results also carry these; a submission tree may not.
RECSUITE_FILES = ("config.json", "result.json")
AUDIT_RE = re.compile(r"^TEST\d\d$")
AUC_RE = re.compile(r"^AUC=([\d.]+)%?")
HASH_RE = re.compile(r"^hash=([0-9a-fA-F]+)$")
SEED_KEYS = ("qsl_rng_seed", "sample_index_rng_seed", "schedule_rng_seed")


@dataclass(frozen=True)
class Finding:
    """One thing ``suite check`` found: a stable rule id, its severity, a message and where."""

    rule: str
    severity: Severity
    message: str
    path: str

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise ValueError(f"'rule' must be one of the documented ids (got {self.rule!r})")

    def to_dict(self) -> dict[str, str]:
        return {"rule": self.rule, "severity": self.severity.value, "message": self.message, "path": self.path}


def error(rule: str, message: str, path: Path | str) -> Finding:
    return Finding(rule, Severity.ERROR, message, str(path))


@dataclass(frozen=True)
class RunFolder:
    """A run folder found under a PATH, with what its place in the tree says."""

    path: Path
    mode: Mode
    #: Folder names: ``<system>/<benchmark>/<Scenario>``.
    system: str
    benchmark: str
    scenario: str
    submission: bool

    @property
    def scenario_dir(self) -> Path:
        return self.path.parent.parent if self.mode is Mode.PERFORMANCE else self.path.parent

    @property
    def org_dir(self) -> Path:
        """A submission run's ``<division>/<org>`` (``<org>/results/<system>/<benchmark>/<Scenario>``)."""
        return self.scenario_dir.parent.parent.parent.parent

    def compliance_dir(self, test: str) -> Path:
        """Where the scenario's audit lives: beside the runs, or under ``compliance/`` in a submission."""
        if self.submission:
            return self.org_dir / "compliance" / self.system / self.benchmark / self.scenario / test
        return self.scenario_dir / test


@dataclass
class CheckReport:
    """What ``suite check`` found under its PATHs."""

    runs: list[Path] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is Severity.ERROR]

    @property
    def passed(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "runs": [str(p) for p in self.runs],
            "errors": len(self.errors),
            "findings": [f.to_dict() for f in self.findings],
        }


# Discovery ----------------------------------------------------------------------------------


def _run_kind(path: Path) -> Mode | None:
    if path.name == "accuracy":
        return Mode.ACCURACY
    if path.name.startswith("run_") and path.parent.name == "performance":
        return Mode.PERFORMANCE
    return None


def _run_folder(path: Path) -> RunFolder | None:
    mode = _run_kind(path)
    if mode is None:
        return None
    scen_dir = path.parent.parent if mode is Mode.PERFORMANCE else path.parent
    if AUDIT_RE.match(scen_dir.name):
        return None  # an audit's runs: checked with their scenario (check_compliance)
    bench_dir = scen_dir.parent
    system_dir = bench_dir.parent
    submission = system_dir.parent.name == "results" and system_dir.parent.parent.parent.name in (
        "closed",
        "open",
        "network",
    )
    return RunFolder(
        path=path,
        mode=mode,
        system=system_dir.name,
        benchmark=bench_dir.name,
        scenario=scen_dir.name,
        submission=submission,
    )


def discover(root: Path) -> list[RunFolder]:
    """The run folders at or under ``root`` (audit folders excluded: they are checked with their scenario)."""
    own = _run_folder(root)
    if own is not None:
        return [own]
    found = []
    if root.is_dir():
        for candidate in sorted(root.rglob("*")):
            if candidate.is_dir() and (run := _run_folder(candidate)) is not None:
                found.append(run)
    return found


# Reading ------------------------------------------------------------------------------------


@dataclass
class RunContext:
    """What one run folder holds, read once; ``None`` where a file is missing or unreadable."""

    run: RunFolder
    detail: DetailLog | None = None
    summary: dict[str, str] | None = None
    config: dict[str, Any] | None = None
    result: dict[str, Any] | None = None


def _read_json(path: Path, findings: list[Finding]) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        findings.append(error("structure.unreadable", f"{path.name} is not JSON ({exc})", path))
    except OSError as exc:
        findings.append(error("structure.unreadable", f"{path.name} cannot be read ({exc.strerror})", path))
    return None


def _looks_binary(path: Path) -> bool:
    with open(path, "rb") as handle:
        head = handle.read(4096)
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the 4 KiB boundary is still text.
        return exc.start < len(head) - 3
    return b"\0" in head


def _read_detail(path: Path, findings: list[Finding]) -> DetailLog | None:
    try:
        if _looks_binary(path):
            findings.append(error("structure.unreadable", f"{path.name} is binary, not LoadGen's :::MLLOG lines", path))
            return None
        with open(path, encoding="utf-8", errors="replace") as handle:
            first = handle.readline()
        if not first.startswith(MLLOG_PREFIX):
            findings.append(error("structure.unreadable", f"{path.name} does not start with ':::MLLOG'", path))
            return None
        detail = read_detail(path)
    except OSError as exc:
        findings.append(error("structure.unreadable", f"{path.name} cannot be read ({exc.strerror})", path))
        return None
    if detail.unparsed_lines:
        findings.append(error("structure.unreadable", f"{path.name} has {detail.unparsed_lines} line(s) that are not :::MLLOG JSON", path))
    return detail


def _read_summary(path: Path, findings: list[Finding]) -> dict[str, str] | None:
    try:
        if _looks_binary(path):
            findings.append(error("structure.unreadable", f"{path.name} is binary, not LoadGen's summary", path))
            return None
        return read_summary(path)
    except OSError as exc:
        findings.append(error("structure.unreadable", f"{path.name} cannot be read ({exc.strerror})", path))
        return None


def check_structure(run: RunFolder) -> list[Finding]:
    """Every required file is there and not empty."""
    required = list(PERFORMANCE_FILES if run.mode is Mode.PERFORMANCE else ACCURACY_FILES)
    if not run.submission:
        required += RECSUITE_FILES
    findings = []
    for name in required:
        path = run.path / name
        if not path.is_file():
            findings.append(error("structure.missing-file", f"{name} is missing", path))
        elif path.stat().st_size == 0:
            findings.append(error("structure.empty-file", f"{name} is empty", path))
    return findings


def read_run(run: RunFolder, findings: list[Finding]) -> RunContext:
    """Read a run folder's files, reporting the unreadable ones."""
    ctx = RunContext(run=run)

    def present(name: str) -> Path | None:
        path = run.path / name
        return path if path.is_file() and path.stat().st_size > 0 else None

    if path := present(DETAIL):
        ctx.detail = _read_detail(path, findings)
    if path := present(SUMMARY):
        ctx.summary = _read_summary(path, findings)
    for name in RECSUITE_FILES:
        if path := present(name):
            data = _read_json(path, findings)
            if data is not None and not isinstance(data, dict):
                findings.append(error("structure.unreadable", f"{name} is not a JSON object", path))
                data = None
            setattr(ctx, name.split(".")[0], data)
    return ctx


# Which rules ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Judge:
    """The rule set, model, variant and profile a run is judged by."""

    rules: RuleSet
    model: str
    variant: str | None
    profile: str


def judge_for(ctx: RunContext, rules_name: str | None, profile: str | None) -> tuple[Judge | None, list[Finding]]:
    """Pick the rule set, model, variant and profile for a run; a finding when none fits."""
    run = ctx.run
    recorded = (ctx.config or {}).get("settings") or {}
    cfg = (ctx.config or {}).get("config") or {}
    name = rules_name or recorded.get("rules") or for_benchmark(run.benchmark)
    if name not in available():
        return None, [error("rules.unknown", f"rule set {name!r} does not exist (have {available()})", run.path)]
    try:
        rules = RuleSet.load(name)
    except SuiteError as exc:
        return None, [error("rules.unknown", str(exc), run.path)]
    model = (cfg.get("model") or {}).get("name") if isinstance(cfg.get("model"), dict) else None
    variant = recorded.get("variant")
    if model is None or variant not in rules.variants:
        try:
            parsed_model, parsed_variant = rules.parse_benchmark(run.benchmark)
        except SuiteError:
            parsed_model, parsed_variant = run.benchmark, rules.default_variant
        model = model or parsed_model
        if variant not in rules.variants:
            variant = parsed_variant if parsed_variant in rules.variants else rules.default_variant
    prof = profile or recorded.get("profile") or cfg.get("profile") or "official"
    if prof not in rules.profiles:
        return None, [error("rules.unknown", f"profile {prof!r} is not in rule set {name!r} (have {sorted(rules.profiles)})", run.path)]
    return Judge(rules=rules, model=str(model), variant=variant, profile=str(prof)), []


def expected_settings(judge: Judge, scenario: Scenario, mode: Mode) -> Settings:
    """What the rule table says LoadGen should have run with."""
    return rule_settings(judge.rules, judge.model, scenario, mode, profile=judge.profile, variant=judge.variant)


# The checks -------------------------------------------------------------------------------


def check_loadgen(ctx: RunContext) -> list[Finding]:
    """LoadGen's verdict, early stopping, and no error in the detail log."""
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
    for warning in detail.warnings:
        if "audit.config" in warning.lower() or "audit config" in warning.lower():
            findings.append(error("settings.audit-config", f"LoadGen applied an audit.config to this run: {warning}", path))
    return findings


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
        for key, want in zip(SEED_KEYS, expected.seeds):
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
    scenario = expected.scenario
    if scenario is Scenario.OFFLINE:
        at_least("settings.samples-per-query", "effective_samples_per_query", expected.min_query_count)
    else:
        at_least("settings.min-query-count", "effective_min_query_count", expected.min_query_count)
    if scenario is Scenario.MULTI_STREAM and get("effective_samples_per_query") != expected.samples_per_query:
        findings.append(
            error(
                "settings.samples-per-query",
                f"effective_samples_per_query is {get('effective_samples_per_query')!r}, the rule says {expected.samples_per_query}",
                path,
            )
        )
    if scenario is Scenario.SERVER:
        latency = number(get("effective_target_latency_ns"))
        if latency is None or latency > expected.target_latency_ns:
            findings.append(
                error(
                    "settings.target-latency",
                    f"effective_target_latency_ns is {get('effective_target_latency_ns')!r}, the rule allows at most {expected.target_latency_ns}",
                    path,
                )
            )
    if scenario is not Scenario.OFFLINE:
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
    want_psc = min(expected.performance_sample_count or total, total) if total else expected.performance_sample_count
    at_least("settings.performance-sample-count", "effective_performance_sample_count", want_psc)
    return findings


def check_sla(ctx: RunContext, expected: Settings) -> list[Finding]:
    """Server: the latency percentile the rule names is within the rule's target."""
    detail, run = ctx.detail, ctx.run
    if detail is None or run.mode is not Mode.PERFORMANCE or expected.scenario is not Scenario.SERVER:
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
        cfg = config.get("config") or {}
        model = (cfg.get("model") or {}).get("name") if isinstance(cfg.get("model"), dict) else None
        if model is None or run.benchmark not in (model, config.get("benchmark"), expected.benchmark):
            findings.append(error("consistency.config", f"config.json's model {model!r} is not the folder's {run.benchmark!r}", path))
        if cfg.get("scenario") != run.scenario:
            findings.append(error("consistency.config", f"config.json's scenario {cfg.get('scenario')!r} is not the folder's {run.scenario!r}", path))
        if cfg.get("mode") != run.mode.value:
            findings.append(error("consistency.config", f"config.json's mode {cfg.get('mode')!r} is not the folder's {run.mode.value!r}", path))
        if cfg.get("system") not in (None, run.system):
            findings.append(error("consistency.config", f"config.json's system {cfg.get('system')!r} is not the folder's {run.system!r}", path))
        if cfg.get("audit"):
            findings.append(error("consistency.config", f"config.json records a {cfg.get('audit')} audit run outside its audit folder", path))
        queries = (config.get("dataset") or {}).get("queries")
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
        if config is not None and result.get("config") != config.get("config"):
            findings.append(error("consistency.result", "result.json's config is not config.json's", path))
        backend = (result.get("backend") or {}).get("name") if isinstance(result.get("backend"), dict) else None
        wanted = ((config or {}).get("config") or {}).get("backend")
        if wanted is not None and backend not in (None, wanted):
            findings.append(error("consistency.result", f"result.json's backend {backend!r} is not config.json's {wanted!r}", path))
        if detail is not None and run.mode is Mode.PERFORMANCE:
            claimed = (result.get("performance") or {}).get("validity")
            if claimed is not None and claimed != detail.get("result_validity"):
                findings.append(
                    error("consistency.result", f"result.json says {claimed!r}, the detail log {detail.get('result_validity')!r}", path)
                )
        if result.get("errors"):
            findings.append(error("consistency.result", f"result.json records run errors: {result['errors'][0]}", path))
        if isinstance(result.get("backend"), dict) and result["backend"].get("start_from_device") is True:
            findings.append(Finding("settings.start-from-device", Severity.INFO, START_FROM_DEVICE, str(path)))
    return findings


def read_accuracy_txt(path: Path) -> tuple[float | None, str | None]:
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = text.splitlines()
    auc = None
    if lines and (m := AUC_RE.match(lines[0])):
        try:
            auc = float(m.group(1))
        except ValueError:
            auc = None
    digest = next((m.group(1).lower() for line in lines if (m := HASH_RE.match(line.strip()))), None)
    return auc, digest


def check_accuracy(ctx: RunContext, expected: Settings) -> list[Finding]:
    """Recompute the AUC from the accuracy log and the dataset's labels; compare and gate it."""
    run = ctx.run
    if run.mode is not Mode.ACCURACY:
        return []
    report_path, log_path = run.path / "accuracy.txt", run.path / ACCURACY_LOG
    if not report_path.is_file() or not log_path.is_file() or log_path.stat().st_size == 0:
        return []
    findings: list[Finding] = []
    if _looks_binary(report_path):
        return [error("structure.unreadable", "accuracy.txt is binary", report_path)]
    reported, digest = read_accuracy_txt(report_path)
    if reported is None:
        findings.append(error("accuracy.report", "accuracy.txt does not start with MLPerf's 'AUC=<percent>%' line", report_path))
    raw = log_path.read_bytes()
    try:
        responses = parse_accuracy_log(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError, KeyError, TypeError) as exc:
        truncated = TRUNCATION_MARK.encode() in raw
        if digest is not None and truncated:
            findings.append(
                Finding(
                    "accuracy.not-recomputed",
                    Severity.INFO,
                    f"the accuracy log is truncated (hash={digest[:12]}...); AUC taken from accuracy.txt",
                    str(log_path),
                )
            )
            findings += _gate(reported, ctx, expected, report_path)
        elif truncated or isinstance(exc, json.JSONDecodeError) and raw.lstrip().startswith(b"["):
            findings.append(error("accuracy.truncated", "the accuracy log is truncated and accuracy.txt has no hash= line", log_path))
        else:
            findings.append(error("structure.unreadable", f"{ACCURACY_LOG} is not LoadGen's accuracy log ({exc})", log_path))
        return findings
    if digest is not None and hashlib.sha256(raw).hexdigest() != digest:
        findings.append(error("accuracy.hash", "the accuracy log's sha256 is not accuracy.txt's hash=", log_path))
    if run.submission and ctx.config is None:
        # A submission holds MLPerf's files only: no config.json names the dataset to score against.
        findings.append(
            Finding("accuracy.not-recomputed", Severity.INFO, "a submission run names no dataset; AUC taken from accuracy.txt", str(log_path))
        )
        return [*findings, *_gate(reported, ctx, expected, report_path)]
    labels = _labels(ctx)
    if isinstance(labels, Finding):
        return [*findings, labels]
    offsets, truth, reference = labels
    from suite.results import score_accuracy

    try:
        report = score_accuracy(responses, offsets, truth, reference, expected.accuracy_target)
    except (ValueError, IndexError) as exc:
        return [*findings, error("accuracy.log", f"the accuracy log does not fit the dataset: {exc}", log_path)]
    recomputed = 100 * report.mean_auc
    if reported is not None and not abs(recomputed - reported) <= 0.0011:
        findings.append(
            error("accuracy.mismatch", f"accuracy.txt says AUC={reported:.3f}%, the accuracy log gives {recomputed:.3f}%", report_path)
        )
    if report.queries != report.total_queries:
        findings.append(
            error("accuracy.coverage", f"the accuracy log answers {report.queries} of the dataset's {report.total_queries} queries", log_path)
        )
    detail = ctx.detail
    if detail is not None and detail.get("qsl_reported_total_count") != report.total_queries:
        findings.append(
            error(
                "accuracy.coverage",
                f"LoadGen's QSL reported {detail.get('qsl_reported_total_count')!r} queries, the dataset has {report.total_queries}",
                run.path / DETAIL,
            )
        )
    findings += _gate(recomputed, ctx, expected, log_path, reference)
    return findings


def _reference(ctx: RunContext) -> list[float] | None:
    ref = ((ctx.config or {}).get("dataset") or {}).get("reference_auc")
    return [float(v) for v in ref] if isinstance(ref, list) and ref else None


def _gate(
    auc_percent: float | None, ctx: RunContext, expected: Settings, path: Path, reference: list[float] | None = None
) -> list[Finding]:
    reference = reference if reference is not None else _reference(ctx)
    if auc_percent is None or reference is None:
        return []
    threshold = 100 * expected.accuracy_target * float(np.mean(reference))
    if auc_percent < threshold:
        return [
            error(
                "accuracy.gate",
                f"AUC {auc_percent:.3f}% is below {threshold:.3f}% ({100 * expected.accuracy_target:g}% of the reference "
                f"{100 * float(np.mean(reference)):.3f}%)",
                path,
            )
        ]
    return []


def _labels(ctx: RunContext) -> tuple[np.ndarray, np.ndarray, list[float] | None] | Finding:
    """(query offsets, labels, reference AUC) of the dataset the run used."""
    from suite.datasets.queries import QuerySizes
    from suite.datasets.store import Dataset

    config = ctx.config
    where = ctx.run.path / "config.json"
    if config is None:
        return error("accuracy.labels", "no config.json names the dataset; the AUC cannot be recomputed", where)
    try:
        data_path = Path(config["dataset"]["path"])
        query_size = str(config["settings"]["query_size"])
        seed = int(config["config"]["model"]["seed"])
    except (KeyError, TypeError, ValueError) as exc:
        return error("accuracy.labels", f"config.json lacks the dataset's path, query size or seed ({exc})", where)
    try:
        dataset = Dataset.load(data_path, in_memory=False)
        offsets = QuerySizes.parse(query_size).offsets(len(dataset), seed=seed)
    except SuiteError as exc:
        return error("accuracy.labels", f"the dataset is not available: {exc}", where)
    recorded = _reference(ctx)
    reference = dataset.reference_auc
    if recorded is not None and reference is not None and not np.allclose(recorded, reference):
        return error("consistency.config", f"config.json's reference AUC {recorded} is not the dataset's {reference}", where)
    return offsets, np.asarray(dataset.labels), reference


def check_run(run: RunFolder, rules: str | None = None, profile: str | None = None) -> list[Finding]:
    """Every check of one run folder."""
    return _check_run(run, rules, profile)[0]


def _check_run(run: RunFolder, rules: str | None, profile: str | None) -> tuple[list[Finding], Judge | None]:
    """:func:`check_run`'s findings, and the judge the run was held to (kept for the tree checks)."""
    findings = check_structure(run)
    ctx = read_run(run, findings)
    judge, problems = judge_for(ctx, rules, profile)
    findings += problems
    findings += check_loadgen(ctx)
    findings += check_summary(ctx)
    if judge is None:
        return findings, judge
    try:
        scenario = Scenario(run.scenario)
    except ValueError:
        return [*findings, error("settings.scenario", f"folder {run.scenario!r} is not a LoadGen scenario", run.path)], judge
    try:
        expected = expected_settings(judge, scenario, run.mode)
    except SuiteError as exc:
        return [*findings, error("rules.unknown", str(exc), run.path)], judge
    findings += check_settings(ctx, expected)
    findings += check_sla(ctx, expected)
    findings += check_config(ctx, expected)
    findings += check_accuracy(ctx, expected)
    return findings, judge


# Scenario and tree level --------------------------------------------------------------------


def check_compliance(run: RunFolder, test: str, accuracy_target: float) -> list[Finding]:
    """An audit folder: present, its logs re-verified (not only its ``TEST PASS`` lines)."""
    from suite import audit

    base = run.compliance_dir(test)
    if not base.is_dir():
        return [error("compliance.missing", f"{test} is required and missing (run `suite audit {test}`)", base)]
    findings = []
    files = ["verify_performance.txt", "performance/run_1/" + DETAIL]
    if test == "TEST01":
        files += ["verify_accuracy.txt", "accuracy/" + ACCURACY_LOG]
    for name in files:
        if not (base / name).is_file():
            findings.append(error("structure.missing-file", f"{test}/{name} is missing", base / name))
    if findings:
        return findings
    for name in [f for f in files if f.startswith("verify_")]:
        text = (base / name).read_text(encoding="utf-8", errors="replace")
        if audit.PASS not in text.splitlines() and not (name == "verify_accuracy.txt" and _test01_fallback_ok(base, accuracy_target)):
            findings.append(error("compliance.failed", f"{test} {name} does not say TEST PASS", base / name))
    # Re-verify from the logs: a hand-written "TEST PASS" is not enough.
    scen = run.scenario_dir
    audited = read_detail(base / "performance" / "run_1" / DETAIL).values
    ref_path = scen / "performance" / "run_1" / DETAIL
    if ref_path.is_file():
        verdict = audit.verify_performance(test, read_detail(ref_path).values, audited, ref_path, base / "performance/run_1" / DETAIL)
        if not verdict.passed and not findings:
            findings.append(error("compliance.failed", f"{test} performance re-verified from the logs: {verdict.lines[-1]}", base))
    acc_ref = scen / "accuracy" / ACCURACY_LOG
    if test == "TEST01" and acc_ref.is_file():
        try:
            verdict = audit.verify_accuracy(audit.accuracy_entries(acc_ref), audit.accuracy_entries(base / "accuracy" / ACCURACY_LOG))
        except (OSError, ValueError):
            verdict = None  # a truncated (submission) accuracy log: the verify file stands
        if verdict is not None and not verdict.passed and not _test01_fallback_ok(base, accuracy_target) and not findings:
            findings.append(error("compliance.failed", "TEST01 accuracy re-verified from the logs: TEST FAIL", base))
    return findings


def _test01_fallback_ok(base: Path, accuracy_target: float) -> bool:
    from suite.audit import auc_delta_ok

    try:
        baseline, _ = read_accuracy_txt(base / "accuracy" / "baseline_accuracy.txt")
        compliance, _ = read_accuracy_txt(base / "accuracy" / "compliance_accuracy.txt")
    except OSError:
        return False
    return baseline is not None and compliance is not None and auc_delta_ok(baseline, compliance, accuracy_target)


def check_scenarios(runs: list[RunFolder], judges: Mapping[Path, Judge | None]) -> list[Finding]:
    """Per scenario: both runs present, the required audits; per benchmark: the required scenarios.

    ``judges`` holds the judge each run was checked by (by run path), from :func:`_check_run`.
    """
    findings: list[Finding] = []
    by_scenario: dict[Path, list[RunFolder]] = {}
    for run in runs:
        by_scenario.setdefault(run.scenario_dir, []).append(run)
    by_benchmark: dict[Path, set[str]] = {}
    for scen_dir, scen_runs in sorted(by_scenario.items()):
        modes = {r.mode for r in scen_runs}
        for mode in Mode:
            if mode not in modes:
                missing = scen_dir / ("performance/run_1" if mode is Mode.PERFORMANCE else "accuracy")
                findings.append(error("structure.missing-run", f"the {mode.value} run of {scen_dir.name} is missing", missing))
        by_benchmark.setdefault(scen_dir.parent, set()).add(scen_dir.name)
        first = scen_runs[0]
        judge = judges[first.path]
        if judge is None:
            continue
        try:
            target = expected_settings(judge, Scenario(first.scenario), Mode.ACCURACY).accuracy_target
        except (ValueError, SuiteError):
            target = 0.99
        for test in judge.rules.compliance:
            findings += check_compliance(first, test, target)
    for bench_dir, scenarios in sorted(by_benchmark.items()):
        run = next(r for r in runs if r.scenario_dir.parent == bench_dir)
        judge = judges[run.path]
        if judge is None:
            continue
        for scen in judge.rules.required_scenarios:
            if scen not in scenarios:
                findings.append(
                    error("structure.missing-scenario", f"{judge.rules.name} requires {scen} for {bench_dir.name}", bench_dir / scen)
                )
    return findings


def check(paths: Iterable[Path], *, rules: str | None = None, profile: str | None = None) -> CheckReport:
    """Check every run folder at or under ``paths``.

    A PATH that is itself a run folder gets the run's checks; a tree also gets the scenario and
    benchmark checks (both runs per scenario, required scenarios, compliance audits), and a
    submission tree MLPerf's tree rules (``suite.submission``: file sets, systems JSON...).
    """
    report = CheckReport()
    for root in paths:
        runs = discover(root)
        if not runs:
            report.findings.append(error("structure.not-a-result", "no run folder (<Scenario>/performance/run_N or <Scenario>/accuracy) here", root))
            continue
        judges: dict[Path, Judge | None] = {}
        for run in runs:
            report.runs.append(run.path)
            findings, judges[run.path] = _check_run(run, rules, profile)
            report.findings += findings
        if _run_folder(root) is None:
            report.findings += check_scenarios(runs, judges)
            from suite.submission import check_tree, org_dirs

            for org in org_dirs(root):
                report.findings += check_tree(org)
    return report


def table(report: CheckReport) -> str:
    """The findings as an aligned text table, then a one-line verdict."""
    rows = [(f.severity.value, f.rule, f.path, f.message) for f in report.findings]
    lines = []
    if rows:
        header = ("severity", "rule", "path", "message")
        widths = [max(len(r[i]) for r in (header, *rows)) for i in range(3)]
        for row in (header, *rows):
            lines.append("  ".join(c.ljust(w) for c, w in zip(row[:3], widths)) + "  " + row[3])
    n_err = len(report.errors)
    verdict = "PASS" if report.passed else "FAIL"
    lines.append(f"{verdict}: {len(report.runs)} run folder(s) checked, {n_err} error(s), {len(report.findings) - n_err} other finding(s)")
    return "\n".join(lines)


def rule_ids() -> Mapping[str, str]:
    """The documented rule ids and their meaning."""
    return dict(RULES)
