"""The rule catalogue of ``suite check``: every rule id with its meaning, and the :class:`Finding` it yields.

Rule ids are stable (tests, scripts and ``docs/mlperf-checker-map.md`` match on them). Every other
module of ``suite.check`` (and nothing below it) builds its findings from here.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from suite.errors import RecordError


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
    "structure.extra-scenario": "a closed or network submission holds a scenario its benchmark neither requires nor allows",
    "rules.unknown": "no rule set, variant or profile fits the run",
    "run.interrupted": "SIGINT or SIGTERM stopped the run (result.json's status is 'interrupted')",
    "loadgen.invalid": "LoadGen's verdict (result_validity) is not VALID",
    "loadgen.early-stopping": "LoadGen's early-stopping criterion was not met",
    "loadgen.error": "the detail log holds a LoadGen error (e.g. 'Ending early')",
    "loadgen.result": "a VALID Offline or Server run's detail log lacks the scenario's result (result_samples_per_second, result_completed_samples_per_sec), which MLPerf's checker reads",
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
    # dlrm-v3 under mlperf-v6.0: NE, accuracy and group AUC (suite.mlperf_v6).
    "accuracy.v6-report": "a dlrm-v3 accuracy.txt lacks one of the metric/lifetime_{ne,accuracy,gauc}/rating lines MLPerf v6.0's checker reads",
    "accuracy.v6-ne": "NE is outside [0.999 x reference, reference / 0.999] (the checker's floor, and the 0.1% ceiling that matters for a lower-is-better metric)",
    "accuracy.v6-accuracy": "accuracy (threshold 0.5) is below 0.999 x the reference's",
    "accuracy.v6-gauc": "group AUC (per request, torchrec's GAUC) is below 0.999 x the reference's",
    "accuracy.v6-mismatch": "a metric recomputed from the accuracy log differs from accuracy.txt's",
    "consistency.summary-detail": "mlperf_log_summary.txt disagrees with mlperf_log_detail.txt",
    "consistency.config": "config.json disagrees with the logs or the folder",
    "consistency.result": "result.json disagrees with the logs or config.json",
    "settings.start-from-device": "the backend kept the query library in accelerator memory (MLPerf's start_from_device)",
    "compliance.missing": "a compliance audit the rule set requires is missing",
    "compliance.failed": "a compliance audit failed, or its verify file says PASS where the logs do not",
    "compliance.test08": "TEST08's accuracy log does not match the accuracy run's by (ts_idx, query_idx) within the NE tolerance",
    "submission.layout": "a submission tree lacks a folder MLPerf requires (code/, calibration.md...), holds extra files (beside the divisions only .md/.pdf), or an unknown division",
    "submission.file-set": "a submission folder does not hold exactly MLPerf's file set",
    "submission.system": "systems/<system>.json lacks a required field (network fields too where is_network), leaves one empty, or disagrees with the tree (division, submitter, is_network)",
    "submission.measurements": "measurements/.../<Scenario>/ lacks user.conf or README.md (or one is empty), or a complete <system>*.json",
    "submission.name": "a file or folder name has whitespace, a path separator or a leading '.'",
    "submission.size": "a file is over 50 MB, or an accuracy log over 10 KiB",
    "submission.symlink": "a submission tree holds a symlink",
    "submission.empty-dir": "a submission tree holds an empty folder",
    "submission.network": "a system over the network (is_network) whose LoadGen sut_name lacks 'Network SUT'",
    "submission.power": "a power measurement (performance/power) lacks MLPerf's files (power/, ranging/, spl.txt, analyzer table, power settings) or one is empty",
    "submission.power-samples": "a power measurement's spl.txt has no positive power sample between the run's power_begin and power_end (or the detail log lacks them)",
}


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


def record_findings(exc: RecordError, path: Path) -> list[Finding]:
    """A damaged file as findings: the file itself ``structure.unreadable``, a field ``record.invalid``
    (one per field, with its path)."""
    return [
        error("record.invalid" if where else "structure.unreadable", f"{path.name}: {where}: {problem}" if where else f"{path.name} {problem}", path)
        for where, problem in exc.problems
    ]
