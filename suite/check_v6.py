"""``suite check`` of a dlrm-v3 accuracy run under mlperf-v6.0: NE, accuracy and group AUC.

``suite.check.check_accuracy`` hands runs judged by a rule set with ``accuracy_metrics`` here. The
three metric lines of ``accuracy.txt`` (``metric/lifetime_{ne,accuracy,gauc}/rating``, what MLPerf's
v6.0 checker reads) are recomputed from the accuracy log and the dataset's labels when both are
at hand, compared with what the file says, and gated (:func:`suite.mlperf_v6.gate`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

from dataclasses import dataclass
from collections.abc import Callable

from suite import mlperf_v6, record
from suite.config import Settings
from suite.errors import RecordError, SuiteError
from suite.results import ACCURACY_LOG, DETAIL, parse_accuracy_log


@dataclass(frozen=True)
class Kit:
    """What ``suite.check`` lends this module (passed in, so neither imports the other):
    its finding constructors, its dataset-label reader and its file helpers."""

    error: Callable[[str, str, Any], Any]
    info: Callable[[str, str, Any], Any]
    warning: Callable[[str, str, Any], Any]
    labels: Callable[[Any], Any]
    binary: Callable[[bytes], bool]
    record_findings: Callable[[RecordError, Path], list[Any]]
    is_finding: Callable[[Any], bool]
    hash_re: Any
    truncation_mark: str


def check_accuracy(ctx: Any, expected: Settings, kit: Kit) -> list[Any]:
    """Findings of one accuracy run folder (``ctx`` is ``suite.check.RunContext``)."""
    error, _binary, record_findings, HASH_RE, TRUNCATION_MARK = kit.error, kit.binary, kit.record_findings, kit.hash_re, kit.truncation_mark

    run = ctx.run
    report_path, log_path = run.path / "accuracy.txt", run.path / ACCURACY_LOG
    if not os.path.lexists(report_path) or not os.path.lexists(log_path):
        return []
    findings: list[Any] = []
    try:
        raw_report = record.read_bytes(report_path, record.TEXT_CAP_BYTES, root=run.tree_root)
        if _binary(raw_report[:4096]):
            return [error("structure.unreadable", "accuracy.txt is binary", report_path)]
        text = raw_report.decode("utf-8", errors="replace")
        raw = record.read_bytes(log_path, record.ACCURACY_LOG_CAP_BYTES, root=run.tree_root)
    except RecordError as exc:
        return record_findings(exc, report_path)
    reported = mlperf_v6.parse_report(text)
    missing = [m for m in mlperf_v6.METRICS if m not in reported]
    if missing:
        lines = ", ".join(f"metric/{mlperf_v6.LINE_KEYS[m]}/rating" for m in missing)
        findings.append(error("accuracy.v6-report", f"accuracy.txt lacks {lines}", report_path))
    digest = next((m.group(1).lower() for line in text.splitlines() if (m := HASH_RE.match(line.strip()))), None)
    if digest is not None and hashlib.sha256(raw).hexdigest() != digest and TRUNCATION_MARK.encode() not in raw:
        findings.append(error("accuracy.hash", "the accuracy log's sha256 is not accuracy.txt's hash=", log_path))
    if digest is None and run.submission:
        findings.append(error("accuracy.hash", "accuracy.txt has no hash= line (truncate_accuracy_log.py writes one)", report_path))
    reference = _reference(ctx)
    if run.submission and ctx.config is None:
        # A submission holds MLPerf's files only: the reference its accuracy.txt states (the
        # results tree was gated against it before submit built the tree), else MLPerf's.
        reference = mlperf_v6.stated_reference(text) or mlperf_v6.MLPERF_REFERENCE
    if run.submission or ctx.config is None or TRUNCATION_MARK.encode() in raw:
        # A submission holds MLPerf's files only: the metrics are taken from accuracy.txt.
        findings.append(kit.info("accuracy.not-recomputed", "a submission run: NE, accuracy and group AUC taken from accuracy.txt", log_path))
        return [*findings, *_gate(reported, reference, expected, report_path, kit)]
    try:
        responses = parse_accuracy_log(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError, KeyError, TypeError) as exc:
        return [*findings, error("structure.unreadable", f"{ACCURACY_LOG} is not LoadGen's accuracy log ({exc})", log_path)]
    labels = kit.labels(ctx)
    if kit.is_finding(labels):
        return [*findings, labels]
    offsets, truth, _ = labels
    offsets, flat = mlperf_v6.candidate_pool(offsets, truth)
    try:
        report = mlperf_v6.score(responses, offsets, flat, reference, expected.accuracy_target)
    except (ValueError, IndexError) as exc:
        return [*findings, error("accuracy.log", f"the accuracy log does not fit the dataset: {exc}", log_path)]
    if report.problem is not None:
        return [*findings, error("accuracy.undefined", f"the metrics are undefined: {report.problem}", log_path)]
    recomputed = report.metrics.as_dict()
    for metric, value in reported.items():
        again = recomputed[metric]
        if not math.isclose(value, again, rel_tol=mlperf_v6.RECOMPUTE_TOLERANCE, abs_tol=1e-9):
            findings.append(
                error(
                    "accuracy.v6-mismatch",
                    f"accuracy.txt says {mlperf_v6.NAMES[metric]} {value:.6f}, the accuracy log gives {again:.6f}",
                    report_path,
                )
            )
    if not report.complete:
        findings.append(
            error("accuracy.coverage", f"the accuracy log answers {report.requests} of the dataset's {report.total_requests} requests", log_path)
        )
    detail = ctx.detail
    if detail is not None and detail.get("qsl_reported_total_count") != report.total_requests:
        findings.append(
            error(
                "accuracy.coverage",
                f"LoadGen's QSL reported {detail.get('qsl_reported_total_count')!r} requests, the dataset has {report.total_requests}",
                log_path,
            )
        )
    return [*findings, *_gate(recomputed, reference, expected, log_path, kit)]


def _reference(ctx: Any) -> mlperf_v6.Reference | None:
    """The dataset's teacher reference, or MLPerf's (a submission, or imported data)."""
    from suite.datasets.store import Dataset

    dataset = ctx.config.dataset if ctx.config is not None else None
    path = dataset.path if dataset is not None else None
    if path is None:
        return mlperf_v6.MLPERF_REFERENCE
    try:
        meta = Dataset.load(Path(path), in_memory=False).meta
    except (SuiteError, OSError):
        return mlperf_v6.MLPERF_REFERENCE if ctx.run.submission else None
    return mlperf_v6.reference_for(meta)


def _gate(values: dict[str, float], reference: mlperf_v6.Reference | None, expected: Settings, path: Path, kit: Kit) -> list[Any]:
    if any(m not in values for m in mlperf_v6.METRICS):
        return []  # accuracy.v6-report says which line is missing
    if reference is None:
        return [
            kit.warning(
                "accuracy.not-gated",
                "NE, accuracy and group AUC were not gated: the dataset records no reference (generated before the v6.0 gate: regenerate it)",
                path,
            )
        ]
    return [kit.error(rule, message, path) for rule, message in mlperf_v6.gate(values, reference, expected.accuracy_target)]


def check_test08(run: Any, base: Path, kit: Kit) -> list[Any]:
    """A TEST08 folder: its files, ``TEST PASS``, and the verification re-run from the logs (a
    hand-written ``TEST PASS`` is not enough) when the run's own results are at hand."""
    from suite import audit

    error = kit.error

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
