"""Reading one run folder once (bounded, every refusal a finding) and picking the rules it is judged by."""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from suite import record
from suite.check.catalogue import Finding, error, record_findings
from suite.config import Mode, Scenario, Settings, rule_settings
from suite.errors import RecordError, SuiteError
from suite.record import ConfigRecord, ResultRecord
from suite.results import ACCURACY_LOG, DETAIL, MLLOG_PREFIX, SUMMARY, DetailLog, parse_detail, parse_summary
from suite.rules import RuleSet, available, for_benchmark
from suite.tree import RunFolder

PERFORMANCE_FILES = (DETAIL, SUMMARY)


ACCURACY_FILES = (DETAIL, SUMMARY, ACCURACY_LOG, "accuracy.txt")


#: Our own results also carry these; a submission tree may not.
RECSUITE_FILES = ("config.json", "result.json")


AUC_RE = re.compile(r"^AUC=([\d.]+|nan)%?")


HASH_RE = re.compile(r"^hash=([0-9a-fA-F]+)$")


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
        if model is None and run.submission and run.org_dir.parent.name in ("closed", "network") and parsed_model not in rules.models:
            # MLPerf's checker: "has an invalid model ... for closed/network division".
            return None, [error("rules.unknown", f"{run.benchmark!r} is not a benchmark of any rule set (have "
                                f"{rules.name}'s {rules.models}): not allowed in the {run.org_dir.parent.name} division", run.path)]
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
