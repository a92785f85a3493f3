"""Result files: LoadGen's logs read back, ``result.json`` and ``accuracy.txt`` written beside them.

Layout (MLPerf's)::

    <output>/<system>/<model>/<Scenario>/performance/run_1/  mlperf_log_{summary,detail}.txt,
                                                             mlperf_log_accuracy.json, config.json,
                                                             result.json
    <output>/<system>/<model>/<Scenario>/accuracy/           the same, plus accuracy.txt

``config.json`` is written before LoadGen starts and ``result.json`` after it ends, both atomically,
so a folder never holds half a file; a run that failed keeps LoadGen's logs and a ``result.json``
whose ``valid`` is false and whose ``errors`` say why.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from suite import record
from suite.config import Scenario
from suite.metrics import auc
from suite.scenarios import spec

MLLOG_PREFIX = ":::MLLOG "
DETAIL = "mlperf_log_detail.txt"
SUMMARY = "mlperf_log_summary.txt"
ACCURACY_LOG = "mlperf_log_accuracy.json"
PERCENTILES = ("50.00", "90.00", "95.00", "97.00", "99.00", "99.90")


@dataclass
class DetailLog:
    """``mlperf_log_detail.txt`` parsed: the first value of each key, and error/warning lines."""

    values: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    unparsed_lines: int = 0

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)


def read_detail(path: Path) -> DetailLog:
    """Parse LoadGen's detail log (read bounded: a regular file of at most ``DETAIL_CAP_BYTES``).

    Raises:
        RecordError: not a regular file, or over the cap.
    """
    return parse_detail(record.read_text(path, record.DETAIL_CAP_BYTES))


def parse_detail(text: str) -> DetailLog:
    """The detail log's text parsed; lines that are not ``:::MLLOG {json object with a "key"}`` are
    counted, not fatal (a hostile line, nested deep or of the wrong shape, included)."""
    out = DetailLog()
    for line in text.splitlines():
        if not line.startswith(MLLOG_PREFIX):
            out.unparsed_lines += 1
            continue
        try:
            entry = json.loads(line[len(MLLOG_PREFIX):])
        except (ValueError, RecursionError):
            entry = None
        key = entry.get("key") if isinstance(entry, dict) else None
        if not isinstance(key, str):
            out.unparsed_lines += 1
            continue
        meta = entry.get("metadata")
        meta = meta if isinstance(meta, dict) else {}
        if meta.get("is_error"):
            out.errors.append(f"{key}: {entry.get('value')}")
        elif meta.get("is_warning"):
            out.warnings.append(f"{key}: {entry.get('value')}")
        out.values.setdefault(key, entry.get("value"))
    return out


def read_summary(path: Path) -> dict[str, str]:
    """``mlperf_log_summary.txt`` as {label: value} for its ``label : value`` lines.

    Labels keep LoadGen's words (``Scenario``, ``Result is``, ``Completed samples per second``,
    ``99.00 percentile latency (ns)``...); the error and warning count lines are kept under
    ``errors`` and ``warnings`` (``0`` for "No errors encountered during test.").
    """
    return parse_summary(record.read_text(path, record.TEXT_CAP_BYTES))


def parse_summary(text: str) -> dict[str, str]:
    """The summary log's text as :func:`read_summary` returns it."""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("No errors encountered"):
            out.setdefault("errors", "0")
        elif line.startswith("No warnings encountered"):
            out.setdefault("warnings", "0")
        elif " ERROR" in line and line.split(" ", 1)[0].isdigit():
            out.setdefault("errors", line.split(" ", 1)[0])
        elif " warning" in line and line.split(" ", 1)[0].isdigit():
            out.setdefault("warnings", line.split(" ", 1)[0])
        elif ":" in line:
            label, _, value = line.partition(":")
            out.setdefault(label.strip(), value.strip())
    return out


def performance(detail: DetailLog, scenario: Scenario) -> dict[str, Any]:
    """The scenario's metric and latency statistics, as LoadGen reported them."""
    get = detail.get
    row = spec(scenario)
    metric = {"name": row.metric_name, "value": get(row.metric_key), "units": row.metric_units}
    latency = {p: get(f"result_{p}_percentile_latency_ns") for p in PERCENTILES}
    return {
        "metric": metric,
        "validity": get("result_validity"),
        "invalid_reason": get("result_invalid_reason"),
        "early_stopping_met": get("early_stopping_met"),
        "perf_constraints_met": get("result_perf_constraints_met"),
        "min_duration_met": get("result_min_duration_met"),
        "min_queries_met": get("result_min_queries_met"),
        "scheduled_samples_per_sec": get("result_scheduled_samples_per_sec"),
        "latency_ns": {
            "min": get("result_min_latency_ns"),
            "mean": get("result_mean_latency_ns"),
            "max": get("result_max_latency_ns"),
            **latency,
        },
        "target_latency_ns": get("effective_target_latency_ns"),
        "target_latency_percentile": get("effective_target_latency_percentile"),
        "query_count": get("result_query_count"),
    }


#: LoadGen's validity checks (keys of :func:`performance`) in words, when they failed.
VALIDITY_CHECKS = (
    ("perf_constraints_met", "latency constraint not met"),
    ("min_duration_met", "min duration not met"),
    ("min_queries_met", "min queries not met"),
    ("early_stopping_met", "early stopping not met"),
)


def invalid_reasons(perf: Mapping[str, Any]) -> list[str]:
    """Why LoadGen called a run INVALID: each of its validity checks that failed, then its own
    recommendation (``result_invalid_reason``, e.g. "Reduce target QPS to improve latency.")."""
    reasons = [text for key, text in VALIDITY_CHECKS if perf.get(key) is False]
    advice = perf.get("invalid_reason")
    if isinstance(advice, str) and advice.strip():
        reasons.append(f"LoadGen: {advice.strip()}")
    return reasons


def number(value: Any) -> float | None:
    """A JSON or detail-log value as a float, or None if it is not a finite number (booleans are not)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        out = float(value)
    except OverflowError:  # an integer beyond float's range
        return None
    return out if math.isfinite(out) else None


def read_accuracy_log(path: Path) -> dict[int, np.ndarray]:
    """``mlperf_log_accuracy.json`` as {qsl_idx: float32 scores}, de-duplicated by qsl_idx (read bounded)."""
    return parse_accuracy_log(record.read_text(path, record.ACCURACY_LOG_CAP_BYTES))


def parse_accuracy_log(text: str) -> dict[int, np.ndarray]:
    """The text of an accuracy log as :func:`read_accuracy_log` returns it.

    Raises:
        ValueError: not a JSON list (``json.JSONDecodeError`` for bad JSON), nested too deep, or a
            ``qsl_idx`` that is not a non-negative integer; KeyError or TypeError for an entry
            without ``qsl_idx`` and hex ``data``.
    """
    try:
        entries = json.loads(text)
    except RecursionError:
        raise ValueError("nested too deep") from None
    if not isinstance(entries, list):
        raise ValueError("not a JSON list")
    out: dict[int, np.ndarray] = {}
    for entry in entries:
        qsl_idx = entry["qsl_idx"]
        if not isinstance(qsl_idx, int) or isinstance(qsl_idx, bool) or qsl_idx < 0:
            raise ValueError(f"qsl_idx {str(qsl_idx)[:40]!r} is not a sample index")
        idx = qsl_idx
        if idx not in out:
            out[idx] = np.frombuffer(bytes.fromhex(entry["data"]), dtype=np.float32)
    return out


def meets(auc_percent: float, threshold_percent: float) -> bool:
    """The AUC gate as MLPerf's checker applies it: the AUC as accuracy.txt prints it (percent,
    3 decimals) against the threshold in percent (80.31 x 0.99 = 79.5069 for dlrm-v2-99)."""
    return float(f"{auc_percent:.3f}") >= threshold_percent - 1e-9


#: What an accuracy run's gate says: the AUC passed or failed it, or there was no reference AUC to
#: gate against (imported data without ``--reference-auc``), which is never a pass.
PASS, FAIL, NOT_GATED = "PASS", "FAIL", "not gated"


@dataclass(frozen=True)
class AccuracyReport:
    """AUC per task of a run's responses against the dataset's labels.

    ``reference_source`` says where ``reference_auc`` came from (the teacher of generated data, or
    ``--reference-auc``); ``problem`` says why the AUC is undefined (labels of one class, scores
    that are not finite), which fails the run whatever the reference.
    """

    auc: list[float]
    reference_auc: list[float] | None
    target: float
    items: int
    queries: int
    total_queries: int
    accuracy: float
    #: Where ``reference_auc`` comes from, for accuracy.txt and result.json.
    reference_source: str | None = None
    problem: str | None = None

    @property
    def mean_auc(self) -> float:
        return float(np.mean(self.auc))

    @property
    def threshold(self) -> float | None:
        if self.reference_auc is None:
            return None
        return self.target * float(np.mean(self.reference_auc))

    @property
    def complete(self) -> bool:
        return self.queries == self.total_queries

    @property
    def status(self) -> str:
        """PASS, FAIL or ``not gated`` (no reference AUC: never a pass)."""
        if self.problem is not None or not self.complete or not math.isfinite(self.mean_auc):
            return FAIL
        threshold = self.threshold
        if threshold is None:
            return NOT_GATED
        return PASS if meets(100 * self.mean_auc, 100 * threshold) else FAIL

    @property
    def passed(self) -> bool:
        return self.status == PASS

    @property
    def why(self) -> str:
        """The status in words, for ``accuracy.txt`` and the CLI."""
        status = self.status
        if self.problem is not None:
            return f"{status} (AUC undefined: {self.problem})"
        if not self.complete:
            return f"{status} (answered {self.queries} of {self.total_queries} queries)"
        if status == NOT_GATED:
            return f"{status} (no reference AUC: the dataset records none; give --reference-auc)"
        return status

    def text(self) -> str:
        """``accuracy.txt``: MLPerf's first line (``AUC=...%``), then our reference and gate."""
        lines = [
            f"AUC={100 * self.mean_auc:.3f}%, accuracy={100 * self.accuracy:.3f}%, "
            f"good={round(self.accuracy * self.items)}, total={self.items}, queries={self.queries}"
        ]
        if len(self.auc) > 1:
            lines.append("task_AUC=" + ",".join(f"{100 * a:.3f}%" for a in self.auc))
        if self.reference_auc is not None:
            source = self.reference_source or "the dataset's"
            lines.append(f"reference_AUC={100 * float(np.mean(self.reference_auc)):.3f}% ({source})")
            lines.append(f"target={100 * (self.threshold or 0.0):.4f}% ({100 * self.target:g}% of reference)")
        lines.append(f"result={self.why}")
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        finite = math.isfinite(self.mean_auc)
        return {
            # An undefined AUC is null (JSON has no NaN); ``problem`` says why.
            "auc": self.mean_auc if finite else None,
            "task_auc": [a if math.isfinite(a) else None for a in self.auc],
            "reference_auc": self.reference_auc,
            "reference_source": self.reference_source,
            "target_fraction": self.target,
            "threshold": self.threshold,
            "accuracy": self.accuracy,
            "items": self.items,
            "queries": self.queries,
            "total_queries": self.total_queries,
            "status": self.status,
            "problem": self.problem,
            "passed": self.passed,
        }


def undefined_auc(truth: np.ndarray, scores: np.ndarray) -> str | None:
    """Why the AUC of ``scores`` (items x tasks) against ``truth`` is undefined, or None: MLPerf's
    checker would print ``AUC=nan%`` and, with NaN below no threshold, let it pass."""
    if len(truth) == 0:
        return "no responses to score"
    tasks = truth.shape[1]
    for k in range(tasks):
        task = f"task {k}'s labels" if tasks > 1 else "the labels"
        values = np.unique(truth[:, k])
        if len(values) < 2:
            return f"{task} are all {values[0]!s} (one class)"
    if not np.all(np.isfinite(scores)):
        bad = int(np.count_nonzero(~np.isfinite(scores)))
        return f"{bad} score(s) are not finite (NaN or inf)"
    return None


def score_accuracy(
    responses: Mapping[int, np.ndarray],
    offsets: np.ndarray,
    labels: np.ndarray,
    reference_auc: list[float] | None,
    target: float,
    reference_source: str | None = None,
) -> AccuracyReport:
    """Join responses to labels by query and compute AUC per task.

    A response is either one score per item (and task), or MLPerf's (prediction, label) pairs per
    item (and task); the labels in pairs must be the dataset's.

    Raises:
        ValueError: a response holds neither, or pairs whose labels are not the dataset's.
    """
    tasks = labels.shape[1] if labels.ndim == 2 else 1
    got_scores: list[np.ndarray] = []
    got_labels: list[np.ndarray] = []
    for idx in sorted(responses):
        lo, hi = int(offsets[idx]), int(offsets[idx + 1])
        scores = responses[idx]
        truth = np.asarray(labels[lo:hi]).reshape(hi - lo, tasks)
        if scores.size == 2 * (hi - lo) * tasks:
            pairs = scores.reshape(hi - lo, tasks, 2)
            if not np.array_equal(pairs[:, :, 1], truth):
                raise ValueError(f"query {idx}: the labels in the accuracy log are not the dataset's")
            scores = pairs[:, :, 0]
        elif scores.size != (hi - lo) * tasks:
            raise ValueError(
                f"query {idx}: {scores.size} scores for {hi - lo} items x {tasks} tasks (want one per item and task, or pairs)"
            )
        got_scores.append(scores.reshape(hi - lo, tasks))
        got_labels.append(truth)
    scores = np.concatenate(got_scores) if got_scores else np.zeros((0, tasks), np.float32)
    truth = np.concatenate(got_labels) if got_labels else np.zeros((0, tasks), np.int8)
    problem = undefined_auc(truth, scores)
    per_task = [float("nan") if problem else auc(truth[:, k], scores[:, k]) for k in range(tasks)]
    # accuracy-dlrm.py's: a prediction rounded (half to even, as numpy does) equals its label.
    accuracy = float(np.mean(np.round(scores) == truth)) if len(truth) else 0.0
    return AccuracyReport(
        auc=per_task,
        reference_auc=reference_auc,
        target=target,
        items=int(len(truth)),
        queries=len(responses),
        total_queries=len(offsets) - 1,
        accuracy=accuracy,
        reference_source=reference_source,
        problem=problem,
    )


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Write JSON atomically (temporary file, then rename)."""
    write_text(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
