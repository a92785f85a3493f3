"""Scenario and benchmark level: both runs of each scenario, the required scenarios, and the
compliance audits, re-verified from their logs (a hand-written ``TEST PASS`` is not enough)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path

from suite import record, scenarios
from suite.check.catalogue import Finding, error
from suite.check.reading import Judge, RunContext, expected_settings, read_accuracy_txt
from suite.check.runs import check_settings, check_verdict
from suite.config import Mode, Settings
from suite.errors import RecordError, SuiteError
from suite.results import ACCURACY_LOG, DETAIL, read_detail
from suite.tree import RunFolder

#: The audits whose performance run is held to the scenario's own performance settings and to
#: LoadGen's verdict, as MLPerf's checker holds it (``check_performance_dir`` on
#: ``<TEST>/performance/run_1``). TEST04 and TEST05 change the settings on purpose (sample count,
#: seeds) and are judged by their verify files only.
SETTINGS_CHECKED = ("TEST01",)


def check_compliance(run: RunFolder, test: str, accuracy_target: float, expected: Settings | None = None) -> list[Finding]:
    """An audit folder: present, its logs re-verified (not only its ``TEST PASS`` lines), and a
    TEST01 performance run's effective settings against ``expected`` (the scenario's performance rules)."""
    from suite import audit

    base = run.compliance_dir(test)
    if not base.is_dir():
        return [error("compliance.missing", f"{test} is required and missing (run `suite audit {test}`)", base)]
    if test == "TEST08":  # dlrm-v3 (mlperf-v6.0): accuracy by (ts_idx, query_idx) and NE only
        return _check_test08(run, base)
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
        audited_log = read_detail(base / "performance" / "run_1" / DETAIL)
        audited = audited_log.values
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
            acc_verdict: audit.Verdict | None = audit.verify_accuracy(audit.accuracy_entries(acc_ref), audit.accuracy_entries(base / "accuracy" / ACCURACY_LOG))
        except (OSError, ValueError, RecordError):
            acc_verdict = None  # a truncated (submission) accuracy log: the verify file stands
        if acc_verdict is not None and not acc_verdict.passed and not _test01_fallback_ok(base, accuracy_target) and not findings:
            findings.append(error("compliance.failed", "TEST01 accuracy re-verified from the logs: TEST FAIL", base))
    if expected is not None and test in SETTINGS_CHECKED:
        audit_run = dataclasses.replace(run, path=base / "performance" / "run_1", mode=Mode.PERFORMANCE)
        audit_ctx = RunContext(run=audit_run, detail=audited_log)
        findings += check_verdict(audit_ctx)
        findings += check_settings(audit_ctx, expected)
    return findings


def _check_test08(run: RunFolder, base: Path) -> list[Finding]:
    """A TEST08 folder: its files, ``TEST PASS``, and the verification re-run from the logs (a
    hand-written ``TEST PASS`` is not enough) when the run's own results are at hand."""
    from suite import audit

    files = ["verify_accuracy.txt", "accuracy/" + ACCURACY_LOG]
    findings = [error("structure.missing-file", f"TEST08/{name} is missing", base / name) for name in files if not (base / name).is_file()]
    if findings:
        return findings
    try:
        text = record.read_text(base / "verify_accuracy.txt", record.TEXT_CAP_BYTES)
    except RecordError as exc:
        return [error("structure.unreadable", f"TEST08: {exc}", base)]
    if audit.PASS not in text.splitlines():
        findings.append(error("compliance.failed", "TEST08 verify_accuracy.txt does not say TEST PASS", base / "verify_accuracy.txt"))
    reference = run.scenario_dir / "accuracy" / ACCURACY_LOG
    config = base / "performance" / "run_1" / "config.json"
    if run.submission or not reference.is_file() or not config.is_file() or not (base / "performance" / "run_1" / DETAIL).is_file():
        return findings  # a submission's logs are truncated: the verify file stands, as for MLPerf's checker
    try:
        data = json.loads(record.read_text(config, record.JSON_CAP_BYTES))
    except (RecordError, ValueError):
        return findings  # the audit run's own check reports a damaged config.json
    verdict = audit.verify_test08_logs(reference, base / "accuracy" / ACCURACY_LOG, data)
    if not verdict.passed and not findings:
        findings.append(error("compliance.test08", f"TEST08 re-verified from the logs: {' '.join(verdict.lines[-8:-2])}", base))
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

    ``judges`` holds the judge each run was checked by (by run path), from :func:`run_findings`.
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
            performance = expected_settings(judge, row.scenario, Mode.PERFORMANCE)
        except (ValueError, SuiteError):
            target, performance = 0.99, None
        for test in judge.rules.compliance:
            findings += check_compliance(first, test, target, performance)
    for bench_dir, present in sorted(by_benchmark.items()):
        run = next(r for r in runs if r.scenario_dir.parent == bench_dir)
        judge = judges[run.path]
        if judge is None:
            continue
        required = judge.rules.required_scenarios
        allowed = {*required, *(str(s) for s in judge.rules.meta.get("optional_scenarios", []))}
        if required and run.submission and run.org_dir.parent.name in ("closed", "network"):
            # MLPerf's checker: "ignoring scenario ... (neither required nor optional)".
            for scen in sorted(present - allowed):
                findings.append(
                    error("structure.extra-scenario", f"{scen} is neither required nor optional for {bench_dir.name} "
                          f"in the {run.org_dir.parent.name} division (have {sorted(allowed)})", bench_dir / scen)
                )  # fmt: skip
        for scen in required:
            if scen not in present:
                findings.append(
                    error("structure.missing-scenario", f"{judge.rules.name} requires {scen} for {bench_dir.name}", bench_dir / scen)
                )
    return findings
