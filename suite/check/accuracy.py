"""The accuracy checks of a run folder: MLPerf's AUC line and hash, the AUC recomputed from the
accuracy log and the dataset's labels, the gate, and a truncated log against the full one kept beside it.

Runs judged by a rule set with ``accuracy_metrics`` (mlperf-v6.0's dlrm-v3) are judged by NE,
accuracy and group AUC instead: the three ``metric/lifetime_{ne,accuracy,gauc}/rating`` lines of
``accuracy.txt`` (what MLPerf's v6.0 checker reads) are recomputed from the accuracy log and the
dataset's labels when both are at hand, compared with what the file says, and gated
(:func:`suite.mlperf_v6.gate`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import stat
from pathlib import Path

import numpy as np

from suite import mlperf_v6, record
from suite.check.catalogue import Finding, Severity, error, record_findings
from suite.check.reading import HASH_RE, RunContext, _binary, _empty, read_accuracy_txt
from suite.config import Mode, Settings
from suite.errors import RecordError, SuiteError
from suite.results import ACCURACY_LOG, DETAIL, meets, parse_accuracy_log
from suite.rules import RuleSet
from suite.submission import TRUNCATION_MARK, VIEWABLE_BYTES
from suite.tree import RunFolder


def check_accuracy(ctx: RunContext, expected: Settings) -> list[Finding]:
    """Recompute the AUC from the accuracy log and the dataset's labels; compare and gate it."""
    run = ctx.run
    if run.mode is not Mode.ACCURACY:
        return []
    if RuleSet.load(expected.rules).accuracy_metrics:  # mlperf-v6.0: NE, accuracy, group AUC
        return _check_accuracy_v6(ctx, expected)
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
        elif truncated or (isinstance(exc, json.JSONDecodeError) and raw.lstrip().startswith(b"[")):
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


def _check_accuracy_v6(ctx: RunContext, expected: Settings) -> list[Finding]:
    """One dlrm-v3 accuracy run folder under mlperf-v6.0: the metric lines, the hash, the metrics
    recomputed from the log (a results tree) or taken from accuracy.txt (a submission), the gate."""
    run = ctx.run
    report_path, log_path = run.path / "accuracy.txt", run.path / ACCURACY_LOG
    if not os.path.lexists(report_path) or not os.path.lexists(log_path):
        return []
    findings: list[Finding] = []
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
    truncated = TRUNCATION_MARK.encode() in raw
    if digest is not None and hashlib.sha256(raw).hexdigest() != digest and not truncated:
        findings.append(error("accuracy.hash", "the accuracy log's sha256 is not accuracy.txt's hash=", log_path))
    if digest is None and run.submission:
        findings.append(error("accuracy.hash", "accuracy.txt has no hash= line (truncate_accuracy_log.py writes one)", report_path))
    reference = _reference_v6(ctx)
    if run.submission and ctx.config is None:
        # A submission holds MLPerf's files only: the reference its accuracy.txt states (the
        # results tree was gated against it before submit built the tree), else MLPerf's.
        reference = mlperf_v6.stated_reference(text) or mlperf_v6.MLPERF_REFERENCE
    if run.submission or ctx.config is None or truncated:
        message = "a submission run: NE, accuracy and group AUC taken from accuracy.txt"
        findings.append(Finding("accuracy.not-recomputed", Severity.INFO, message, str(log_path)))
        return [*findings, *_gate_v6(reported, reference, expected, report_path)]
    try:
        responses = parse_accuracy_log(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError, KeyError, TypeError) as exc:
        return [*findings, error("structure.unreadable", f"{ACCURACY_LOG} is not LoadGen's accuracy log ({exc})", log_path)]
    labels = _labels(ctx)
    if isinstance(labels, Finding):
        return [*findings, labels]
    offsets, flat = mlperf_v6.candidate_pool(labels[0], labels[1])
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
            says = f"accuracy.txt says {mlperf_v6.NAMES[metric]} {value:.6f}, the accuracy log gives {again:.6f}"
            findings.append(error("accuracy.v6-mismatch", says, report_path))
    if not report.complete:
        says = f"the accuracy log answers {report.requests} of the dataset's {report.total_requests} requests"
        findings.append(error("accuracy.coverage", says, log_path))
    qsl = ctx.detail.get("qsl_reported_total_count") if ctx.detail is not None else report.total_requests
    if qsl != report.total_requests:
        says = f"LoadGen's QSL reported {qsl!r} requests, the dataset has {report.total_requests}"
        findings.append(error("accuracy.coverage", says, log_path))
    return [*findings, *_gate_v6(recomputed, reference, expected, log_path)]


def _reference_v6(ctx: RunContext) -> mlperf_v6.Reference | None:
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


def _gate_v6(values: dict[str, float], reference: mlperf_v6.Reference | None, expected: Settings, path: Path) -> list[Finding]:
    if any(m not in values for m in mlperf_v6.METRICS):
        return []  # accuracy.v6-report says which line is missing
    if reference is None:
        why = "the dataset records no reference (generated before the v6.0 gate: regenerate it)"
        return [Finding("accuracy.not-gated", Severity.WARNING, f"NE, accuracy and group AUC were not gated: {why}", str(path))]
    return [error(rule, message, path) for rule, message in mlperf_v6.gate(values, reference, expected.accuracy_target)]


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
        offsets = QuerySizes.parse(query_size).offsets(len(dataset), seed=seed, stratified=record.stratified_queries(config.schema_version))
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
