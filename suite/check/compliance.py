"""Scenario and benchmark level: both runs of each scenario, the required scenarios, and the
compliance audits, re-verified from their logs (a hand-written ``TEST PASS`` is not enough)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from suite import record, scenarios
from suite.check.catalogue import Finding, error
from suite.check.reading import Judge, expected_settings, read_accuracy_txt
from suite.config import Mode
from suite.errors import RecordError, SuiteError
from suite.results import ACCURACY_LOG, DETAIL, read_detail
from suite.tree import RunFolder


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
            row = scenarios.by_name(first.scenario)
            if row is None:
                raise ValueError(first.scenario)
            target = expected_settings(judge, row.scenario, Mode.ACCURACY).accuracy_target
        except (ValueError, SuiteError):
            target = 0.99
        for test in judge.rules.compliance:
            findings += check_compliance(first, test, target)
    for bench_dir, present in sorted(by_benchmark.items()):
        run = next(r for r in runs if r.scenario_dir.parent == bench_dir)
        judge = judges[run.path]
        if judge is None:
            continue
        for scen in judge.rules.required_scenarios:
            if scen not in present:
                findings.append(
                    error("structure.missing-scenario", f"{judge.rules.name} requires {scen} for {bench_dir.name}", bench_dir / scen)
                )
    return findings
