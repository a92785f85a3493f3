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
import os
import re
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from suite import mlperf_v6, record
from suite.config import Mode, Scenario, Settings, rule_settings
from suite.errors import RecordError, SuiteError
from suite.record import ConfigRecord, ResultRecord
from suite.results import (
    ACCURACY_LOG, DETAIL, MLLOG_PREFIX, SUMMARY, DetailLog, meets, number, parse_accuracy_log, parse_detail, parse_summary, read_detail,
)
from suite.rules import RuleSet, available, for_benchmark
from suite.submission import TRUNCATION_MARK, VIEWABLE_BYTES


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
    "structure.unreadable": "a file cannot be read safely or parsed (not a regular file, over its size cap, binary, truncated, not JSON, nested too deep)",
    "record.invalid": "config.json or result.json breaks the record format (a field's type, range, finiteness or length; a newer schema_version)",
    "structure.missing-run": "a scenario lacks its performance or accuracy run",
    "structure.missing-scenario": "a benchmark lacks a scenario the rule set requires",
    "rules.unknown": "no rule set, variant or profile fits the run",
    "run.interrupted": "SIGINT or SIGTERM stopped the run (result.json's status is 'interrupted')",
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
    "settings.performance-sample-count": "effective_performance_sample_count is below the rule (mlperf-v5.1: 204800, however small the dataset)",
    "settings.seed": "an effective RNG seed is not the rule's",
    "settings.query-size": "(warning) the run's query sizes are not the closed division's (mlperf-v5.1: MLPerf's quantiles): open division only",
    "sla.latency": "the latency percentile the rule names is over its target",
    "accuracy.report": "accuracy.txt lacks MLPerf's AUC= line",
    "accuracy.log": "the accuracy log does not fit the dataset",
    "accuracy.labels": "the dataset's labels are not available to recompute the AUC",
    "accuracy.mismatch": "the AUC recomputed from the accuracy log differs from accuracy.txt",
    "accuracy.gate": "the AUC (as accuracy.txt prints it) is below the rule's fraction of the reference AUC (mlperf-v5.1: MLPerf's 80.31%)",
    "accuracy.undefined": "the AUC is undefined (NaN): labels of one class, or scores that are not finite",
    "accuracy.not-gated": "no reference AUC (imported data without --reference-auc): the AUC was not gated",
    "accuracy.coverage": "the accuracy run did not cover the whole dataset (the rule's dataset size under mlperf-v5.1)",
    "accuracy.truncated": "the accuracy log is truncated and accuracy.txt has no hash= line",
    "accuracy.hash": "the accuracy log's sha256 is not accuracy.txt's hash=, or a submission's accuracy.txt has none",
    "accuracy.not-recomputed": "the accuracy log is truncated (with a hash); the AUC was not recomputed",
    "accuracy.backup": "the truncated accuracy log is not the head and tail of the full log kept beside the submission",
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
RULES.update(mlperf_v6.RULES)  # dlrm-v3 under mlperf-v6.0 (suite.check_v6)

PERFORMANCE_FILES = (DETAIL, SUMMARY)
ACCURACY_FILES = (DETAIL, SUMMARY, ACCURACY_LOG, "accuracy.txt")
#: Our own results also carry these; a submission tree may not.
RECSUITE_FILES = ("config.json", "result.json")
AUDIT_RE = re.compile(r"^TEST\d\d$")
AUC_RE = re.compile(r"^AUC=([\d.]+|nan)%?")
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
    def tree_root(self) -> Path:
        """The results tree (or a submission's ``results/``) the run sits in: where a symlink may lead."""
        return self.scenario_dir.parent.parent.parent

    @property
    def org_dir(self) -> Path:
        """A submission run's ``<division>/<org>`` (``<org>/results/<system>/<benchmark>/<Scenario>``)."""
        return self.scenario_dir.parent.parent.parent.parent

    def compliance_dir(self, test: str) -> Path:
        """Where the scenario's audit lives: beside the runs, or under ``compliance/`` in a submission."""
        if self.submission:
            from suite.submission_format import detect

            return detect(self.org_dir).compliance_dir(self.org_dir, self.system, self.benchmark, self.scenario) / test
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
    config: ConfigRecord | None = None
    result: ResultRecord | None = None
    #: Files that are there but were refused (reported already): not "missing" to later checks.
    damaged: set[str] = field(default_factory=set)


def record_findings(exc: RecordError, path: Path) -> list[Finding]:
    """A damaged file as findings: the file itself ``structure.unreadable``, a field ``record.invalid``
    (one per field, with its path)."""
    return [
        error("record.invalid" if where else "structure.unreadable", f"{path.name}: {where}: {problem}" if where else f"{path.name} {problem}", path)
        for where, problem in exc.problems
    ]


def _binary(head: bytes) -> bool:
    """Whether a file's first 4 KiB are not text."""
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the 4 KiB boundary is still text.
        return exc.start < len(head) - 3
    return b"\0" in head


def _read_detail(path: Path, findings: list[Finding], root: Path | None = None) -> DetailLog | None:
    try:
        raw = record.read_bytes(path, record.DETAIL_CAP_BYTES, root=root)
    except RecordError as exc:
        findings += record_findings(exc, path)
        return None
    if _binary(raw[:4096]):
        findings.append(error("structure.unreadable", f"{path.name} is binary, not LoadGen's :::MLLOG lines", path))
        return None
    if not raw.startswith(MLLOG_PREFIX.encode()):
        findings.append(error("structure.unreadable", f"{path.name} does not start with ':::MLLOG'", path))
        return None
    detail = parse_detail(raw.decode("utf-8", errors="replace"))
    if detail.unparsed_lines:
        findings.append(error("structure.unreadable", f"{path.name} has {detail.unparsed_lines} line(s) that are not :::MLLOG JSON", path))
    return detail


def _read_summary(path: Path, findings: list[Finding], root: Path | None = None) -> dict[str, str] | None:
    try:
        raw = record.read_bytes(path, record.TEXT_CAP_BYTES, root=root)
    except RecordError as exc:
        findings += record_findings(exc, path)
        return None
    if _binary(raw[:4096]):
        findings.append(error("structure.unreadable", f"{path.name} is binary, not LoadGen's summary", path))
        return None
    return parse_summary(raw.decode("utf-8", errors="replace"))


def check_structure(run: RunFolder) -> list[Finding]:
    """Every required file is there and not empty."""
    required = list(PERFORMANCE_FILES if run.mode is Mode.PERFORMANCE else ACCURACY_FILES)
    if not run.submission:
        required += RECSUITE_FILES
    findings = []
    for name in required:
        path = run.path / name
        if not os.path.lexists(path):
            findings.append(error("structure.missing-file", f"{name} is missing", path))
        elif _empty(path):
            findings.append(error("structure.empty-file", f"{name} is empty", path))
    return findings


def _empty(path: Path) -> bool:
    """A regular file of 0 bytes (anything else that is there is judged when read)."""
    try:
        info = os.stat(path)
    except OSError:
        return False
    return stat.S_ISREG(info.st_mode) and info.st_size == 0


def read_run(run: RunFolder, findings: list[Finding]) -> RunContext:
    """Read a run folder's files, reporting the unreadable ones."""
    ctx = RunContext(run=run)
    root = run.tree_root

    def present(name: str) -> Path | None:
        path = run.path / name
        return path if os.path.lexists(path) and not _empty(path) else None

    if path := present(DETAIL):
        ctx.detail = _read_detail(path, findings, root)
    if path := present(SUMMARY):
        ctx.summary = _read_summary(path, findings, root)
    if path := present("config.json"):
        try:
            ctx.config = record.read_config(path, root=root)
        except RecordError as exc:
            findings += record_findings(exc, path)
            ctx.damaged.add(path.name)
    if path := present("result.json"):
        try:
            ctx.result = record.read_result(path, root=root)
        except RecordError as exc:
            findings += record_findings(exc, path)
            ctx.damaged.add(path.name)
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
    recorded = ctx.config.settings if ctx.config is not None else None
    cfg = ctx.config.config if ctx.config is not None else None
    name = rules_name or (recorded.rules if recorded else None) or for_benchmark(run.benchmark)
    if name not in available():
        return None, [error("rules.unknown", f"rule set {name!r} does not exist (have {available()})", run.path)]
    try:
        rules = RuleSet.load(name)
    except SuiteError as exc:
        return None, [error("rules.unknown", str(exc), run.path)]
    model = cfg.model.name if cfg is not None else None
    variant = recorded.variant if recorded is not None else None
    if model is None or variant not in rules.variants:
        try:
            parsed_model, parsed_variant = rules.parse_benchmark(run.benchmark)
        except SuiteError:
            parsed_model, parsed_variant = run.benchmark, rules.default_variant
        model = model or parsed_model
        if variant not in rules.variants:
            variant = parsed_variant if parsed_variant in rules.variants else rules.default_variant
    prof = profile or (recorded.profile if recorded else None) or (cfg.profile if cfg else None) or "official"
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
    elif not expected.early_stopping:
        # MLPerf's checker reads no query count where early stopping judges the run's length.
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
    if expected.dataset_size:
        # MLPerf's rule: at least the rule's count, however few samples the dataset holds.
        want_psc = expected.performance_sample_count
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


def read_accuracy_txt(path: Path) -> tuple[float | None, str | None]:
    """accuracy.txt's AUC (percent) and ``hash=``, read bounded.

    Raises:
        RecordError: not a regular file, or over its cap.
    """
    text = record.read_text(path, record.TEXT_CAP_BYTES)
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
    if RuleSet.load(expected.rules).accuracy_metrics:  # mlperf-v6.0: NE, accuracy, group AUC
        from suite import check_v6

        return check_v6.check_accuracy(ctx, expected, _v6_kit())
    report_path, log_path = run.path / "accuracy.txt", run.path / ACCURACY_LOG
    if not os.path.lexists(report_path) or not os.path.lexists(log_path) or _empty(log_path):
        return []
    findings: list[Finding] = []
    try:
        if _binary(record.read_bytes(report_path, record.TEXT_CAP_BYTES, root=run.tree_root)[:4096]):
            return [error("structure.unreadable", "accuracy.txt is binary", report_path)]
        reported, digest = read_accuracy_txt(report_path)
    except RecordError as exc:
        return record_findings(exc, report_path)
    if reported is None:
        findings.append(error("accuracy.report", "accuracy.txt does not start with MLPerf's 'AUC=<percent>%' line", report_path))
    try:
        raw = record.read_bytes(log_path, record.ACCURACY_LOG_CAP_BYTES, root=run.tree_root)
    except RecordError as exc:
        return [*findings, *record_findings(exc, log_path)]
    try:
        responses = parse_accuracy_log(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError, KeyError, TypeError) as exc:
        truncated = TRUNCATION_MARK.encode() in raw
        full = _full_log(run)
        if digest is not None and truncated and full is not None:
            return [*findings, *_check_full_log(raw, digest, full, reported, ctx, expected, report_path, log_path)]
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
    if digest is None and run.submission:
        # MLPerf's checker: "not hash value for mlperf_log_accuracy.json".
        findings.append(error("accuracy.hash", "accuracy.txt has no hash= line (truncate_accuracy_log.py writes one)", report_path))
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
    reference = _given_reference(ctx) or reference
    from suite.results import score_accuracy

    try:
        report = score_accuracy(responses, offsets, truth, reference, expected.accuracy_target)
    except (ValueError, IndexError) as exc:
        return [*findings, error("accuracy.log", f"the accuracy log does not fit the dataset: {exc}", log_path)]
    recomputed = 100 * report.mean_auc
    if report.problem is not None:
        return [*findings, error("accuracy.undefined", f"the AUC is undefined: {report.problem}", log_path)]
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


def _v6_kit() -> Any:
    """What suite.check_v6 borrows from here (handed over, so it never imports this module)."""
    from suite.check_v6 import Kit

    return Kit(
        error=error,
        info=lambda rule, message, path: Finding(rule, Severity.INFO, message, str(path)),
        warning=lambda rule, message, path: Finding(rule, Severity.WARNING, message, str(path)),
        labels=_labels,
        binary=_binary,
        record_findings=record_findings,
        is_finding=lambda value: isinstance(value, Finding),
        hash_re=HASH_RE,
        truncation_mark=TRUNCATION_MARK,
    )


def _full_log(run: RunFolder) -> Path | None:
    """The full accuracy log ``suite submit`` kept beside a submission (``<sub>-accuracy-logs/``)."""
    if not run.submission:
        return None
    root = run.org_dir.parent.parent
    full = root.with_name(root.name + "-accuracy-logs") / run.path.relative_to(root) / ACCURACY_LOG
    return full if full.is_file() else None


def _check_full_log(
    raw: bytes, digest: str, full: Path, reported: float | None, ctx: RunContext, expected: Settings, report_path: Path, log_path: Path
) -> list[Finding]:
    """A truncated accuracy log against the full one beside the submission: hash, head and tail,
    and the AUC recomputed from its (prediction, label) pairs as MLPerf's accuracy script does."""
    from suite.metrics import auc

    try:
        whole = record.read_bytes(full, record.ACCURACY_LOG_CAP_BYTES)
        report_text = record.read_text(report_path, record.TEXT_CAP_BYTES)
    except RecordError as exc:
        return [error("structure.unreadable", str(exc), full)]
    findings = []
    if hashlib.sha256(whole).hexdigest() != digest:
        findings.append(error("accuracy.hash", f"the full accuracy log {full} is not accuracy.txt's hash=", full))
    cut = whole if len(whole) <= 2 * VIEWABLE_BYTES else whole[:VIEWABLE_BYTES] + TRUNCATION_MARK.encode() + whole[-VIEWABLE_BYTES:]
    if cut != raw:
        findings.append(error("accuracy.backup", f"the truncated log is not the first and last 4 KiB of {full}", log_path))
    try:
        responses = parse_accuracy_log(whole.decode("utf-8"))
        pairs = np.concatenate([r.reshape(-1, 2) for r in responses.values()])
    except (UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        return [*findings, error("accuracy.log", f"the full accuracy log holds no (prediction, label) pairs ({exc})", full)]
    if not np.isin(pairs[:, 1], (0.0, 1.0)).all():
        # An older log of bare predictions: nothing in it says the labels.
        findings.append(Finding("accuracy.not-recomputed", Severity.INFO, "the full log holds no labels; AUC taken from accuracy.txt", str(full)))
        return [*findings, *_gate(reported, ctx, expected, report_path)]
    if "task_AUC=" in report_text:
        # A multi-task AUC is a mean over tasks; pooled pairs cannot give it.
        findings.append(Finding("accuracy.not-recomputed", Severity.INFO, "a multi-task AUC; taken from accuracy.txt", str(full)))
        return [*findings, *_gate(reported, ctx, expected, report_path)]
    recomputed = 100 * auc(pairs[:, 1], pairs[:, 0])
    if reported is not None and not abs(recomputed - reported) <= 0.0011:
        findings.append(
            error("accuracy.mismatch", f"accuracy.txt says AUC={reported:.3f}%, the full accuracy log gives {recomputed:.3f}%", report_path)
        )
    return [*findings, *_gate(recomputed, ctx, expected, log_path)]


def _reference(ctx: RunContext) -> list[float] | None:
    return _given_reference(ctx) or _dataset_reference(ctx)


def _dataset_reference(ctx: RunContext) -> list[float] | None:
    dataset = ctx.config.dataset if ctx.config is not None else None
    ref = dataset.reference_auc if dataset is not None else None
    return list(ref) if ref else None


def _given_reference(ctx: RunContext) -> list[float] | None:
    """The run's ``--reference-auc``, which gates it in place of the dataset's."""
    given = ctx.config.config.reference_auc if ctx.config is not None else None
    return [given] if given is not None else None


def _gate(
    auc_percent: float | None, ctx: RunContext, expected: Settings, path: Path, reference: list[float] | None = None
) -> list[Finding]:
    if expected.reference_auc_percent:
        reference = [expected.reference_auc_percent / 100]
    reference = reference if reference is not None else _reference(ctx)
    if auc_percent is not None and not math.isfinite(auc_percent):
        return [error("accuracy.undefined", "accuracy.txt says AUC=nan%: the AUC is undefined", path)]
    if auc_percent is None or (reference is None and ctx.config is None):
        return []  # a submission run: its results tree was gated before submit built it
    if reference is None:
        return [
            Finding(
                "accuracy.not-gated",
                Severity.WARNING,
                f"AUC {auc_percent:.3f}% was not gated: the dataset records no reference AUC and the run gave no --reference-auc",
                str(path),
            )
        ]
    threshold = 100 * expected.accuracy_target * float(np.mean(reference))
    if not meets(auc_percent, threshold):
        return [
            error(
                "accuracy.gate",
                f"AUC {auc_percent:.3f}% is below {threshold:.5f}% ({100 * expected.accuracy_target:g}% of the reference "
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
        why = "config.json is damaged (see its findings)" if where.name in ctx.damaged else "no config.json names the dataset"
        return error("accuracy.labels", f"{why}; the AUC cannot be recomputed", where)
    data_path = config.dataset.path if config.dataset is not None else None
    query_size = config.settings.query_size if config.settings is not None else None
    seed = config.config.model.seed
    if data_path is None or query_size is None:
        missing = "dataset.path" if data_path is None else "settings.query_size"
        return error("accuracy.labels", f"config.json lacks the dataset's path, query size or seed ({missing})", where)
    # The record checked the spec's numbers; a quantile file it names is read only if it is a small regular file.
    kind, _, quantiles = query_size.partition(":")
    if kind == "file":
        try:
            record.read_bytes(Path(quantiles), record.TEXT_CAP_BYTES)
        except RecordError as exc:
            return error("accuracy.labels", f"the query-size file of config.json: {exc}", where)
    if (problem := _dataset_files_problem(Path(data_path))) is not None:
        return error("accuracy.labels", f"the dataset is not available: {problem}", where)
    try:
        dataset = Dataset.load(Path(data_path), in_memory=False)
        offsets = QuerySizes.parse(query_size).offsets(len(dataset), seed=seed)
    except SuiteError as exc:
        return error("accuracy.labels", f"the dataset is not available: {exc}", where)
    recorded = _dataset_reference(ctx)
    reference = dataset.reference_auc
    if recorded is not None and reference is not None and not np.allclose(recorded, reference):
        return error("consistency.config", f"config.json's reference AUC {recorded} is not the dataset's {reference}", where)
    return offsets, np.asarray(dataset.labels), reference


def _dataset_files_problem(path: Path) -> str | None:
    """Why the dataset folder a record names cannot be opened without blocking, or None.

    The folder may come with a received results tree: its ``meta.json`` must be a small regular
    file and its arrays regular files (a FIFO would block ``np.load``); what they hold is
    ``Dataset.load``'s to judge.
    """
    try:
        entries = [e for e in os.scandir(path) if e.name == "meta.json" or e.name.endswith(".npy")]
    except OSError:
        return None  # no folder there: Dataset.load says so
    for entry in entries:
        try:
            if entry.name == "meta.json":
                record.read_bytes(Path(entry.path), record.JSON_CAP_BYTES)
            elif not stat.S_ISREG(os.stat(entry.path).st_mode):
                return f"{entry.path} is not a regular file"
        except (OSError, RecordError) as exc:
            return f"{entry.path}: {exc}"
    return None


def _check_run(run: RunFolder, rules: str | None, profile: str | None) -> tuple[list[Finding], Judge | None]:
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
    findings += check_dataset_size(ctx, expected)
    findings += check_division(ctx, judge)
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
    if test == "TEST08":  # dlrm-v3 (mlperf-v6.0): accuracy by (ts_idx, query_idx) and NE only
        from suite import check_v6

        return check_v6.check_test08(run, base, _v6_kit())
    findings = []
    files = ["verify_performance.txt", "performance/run_1/" + DETAIL]
    if test == "TEST01":
        files += ["verify_accuracy.txt", "accuracy/" + ACCURACY_LOG]
    for name in files:
        if not (base / name).is_file():
            findings.append(error("structure.missing-file", f"{test}/{name} is missing", base / name))
    if findings:
        return findings
    try:
        texts = {name: record.read_text(base / name, record.TEXT_CAP_BYTES) for name in files if name.startswith("verify_")}
        audited = read_detail(base / "performance" / "run_1" / DETAIL).values
    except RecordError as exc:
        return [error("structure.unreadable", f"{test}: {exc}", base)]
    for name, text in texts.items():
        if audit.PASS not in text.splitlines() and not (name == "verify_accuracy.txt" and _test01_fallback_ok(base, accuracy_target)):
            findings.append(error("compliance.failed", f"{test} {name} does not say TEST PASS", base / name))
    # Re-verify from the logs: a hand-written "TEST PASS" is not enough.
    scen = run.scenario_dir
    ref_path = scen / "performance" / "run_1" / DETAIL
    try:
        reference = read_detail(ref_path).values if ref_path.is_file() else None
    except RecordError:
        reference = None  # the run's own check reports it
    if reference is not None:
        verdict = audit.verify_performance(test, reference, audited, ref_path, base / "performance/run_1" / DETAIL)
        if not verdict.passed and not findings:
            findings.append(error("compliance.failed", f"{test} performance re-verified from the logs: {verdict.lines[-1]}", base))
    acc_ref = scen / "accuracy" / ACCURACY_LOG
    if test == "TEST01" and acc_ref.is_file():
        try:
            verdict = audit.verify_accuracy(audit.accuracy_entries(acc_ref), audit.accuracy_entries(base / "accuracy" / ACCURACY_LOG))
        except (OSError, ValueError, RecordError):
            verdict = None  # a truncated (submission) accuracy log: the verify file stands
        if verdict is not None and not verdict.passed and not _test01_fallback_ok(base, accuracy_target) and not findings:
            findings.append(error("compliance.failed", "TEST01 accuracy re-verified from the logs: TEST FAIL", base))
    return findings


def _test01_fallback_ok(base: Path, accuracy_target: float) -> bool:
    from suite.audit import auc_delta_ok

    try:
        baseline, _ = read_accuracy_txt(base / "accuracy" / "baseline_accuracy.txt")
        compliance, _ = read_accuracy_txt(base / "accuracy" / "compliance_accuracy.txt")
    except (OSError, RecordError):
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
