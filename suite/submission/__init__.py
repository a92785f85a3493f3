"""MLPerf submission formats, one module per round, named by the rule set they go with.

The seam for a new round: write ``suite/submission/mlperf_vX_Y.py`` holding ``FORMAT`` (a
:class:`SubmissionFormat`, usually ``dataclasses.replace`` of the previous round's with what
changed, as ``mlperf_v6_0.py`` does) and add its line to :data:`FORMATS`, keyed by the rule set's name (``rules/<name>.toml``).
``suite check`` judges a submission tree's benchmark by the format of the rule set that names it;
``suite submit`` lays a tree out in the format of the rule set its runs were made under. A rule
set without a format of its own (ours, ``deeprecsys``) uses :data:`DEFAULT`'s.

Also here: what every round shares (names MLPerf refuses, the accuracy-log truncation of
``truncate_accuracy_log.py``) and the checks of a systems or measurements JSON as data.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from suite.submission import mlperf_v5_1, mlperf_v6_0
from suite.submission.format import SubmissionFormat as SubmissionFormat

#: Each rule set's submission format, by the rule set's name.
FORMATS: dict[str, SubmissionFormat] = {
    "mlperf-v5.1": mlperf_v5_1.FORMAT,
    "mlperf-v6.0": mlperf_v6_0.FORMAT,
}
#: The format of a rule set without one of its own.
DEFAULT = "mlperf-v5.1"

#: truncate_accuracy_log.py keeps this much of each end.
VIEWABLE_BYTES = 4096
#: MLPerf's truncate_accuracy_log.py joins the two ends with this.
TRUNCATION_MARK = "\n\n...\n\n"


def for_rules(rules: str | None) -> SubmissionFormat:
    """The submission format of rule set ``rules`` (:data:`DEFAULT`'s for one without its own)."""
    return FORMATS.get(rules or DEFAULT, FORMATS[DEFAULT])


def bad_name(name: str) -> str | None:
    """Why MLPerf's checker (or a filesystem) would refuse ``name`` as one path component, or None."""
    if not name:
        return "is empty"
    if any(c.isspace() for c in name):
        return "contains whitespace"
    if "/" in name or "\\" in name:
        return "contains a path separator"
    if name.startswith("."):
        return "starts with '.'"
    if name == "__pycache__":
        return "is __pycache__"
    return None


def system_problems(
    data: Mapping[str, Any], division: str | None = None, submitter: str | None = None, fmt: SubmissionFormat | None = None
) -> list[str]:
    """What is wrong with a ``systems/<system>.json`` under ``fmt`` (the default round's), one message per problem."""
    fmt = fmt or FORMATS[DEFAULT]
    problems = []
    missing = [k for k in fmt.system_fields if k not in data]
    if missing:
        problems.append(f"required field(s) missing: {', '.join(repr(k) for k in missing)}")
    empty = [k for k in fmt.system_meaningful_fields if k in data and _empty(data[k])]
    if empty:
        problems.append(f"required field(s) empty: {', '.join(repr(k) for k in empty)}")
    if not _empty(data.get("status")) and str(data.get("status")).lower() not in fmt.statuses:
        problems.append(f"'status' must be one of {list(fmt.statuses)} (got {data.get('status')!r})")
    if not _empty(data.get("system_type")) and data.get("system_type") not in fmt.system_types:
        problems.append(f"'system_type' must be one of {list(fmt.system_types)} (got {data.get('system_type')!r})")
    if division is not None and data.get("division") not in (None, "", division):
        problems.append(f"'division' is {data.get('division')!r}, the tree's is {division!r}")
    if submitter is not None and str(data.get("submitter") or submitter).lower() != submitter.lower():
        problems.append(f"'submitter' is {data.get('submitter')!r}, the tree's is {submitter!r}")
    network = is_network(data)
    if division == "closed" and network:
        # MLPerf's checker: a system over the network belongs to the network division.
        problems.append("'is_network' is true, which the closed division does not allow")
    if division == "network" and not network:
        problems.append("'is_network' is not true, which the network division requires")
    if network:
        missing = [k for k in fmt.network_fields if k not in data]
        if missing:
            problems.append(f"network field(s) missing: {', '.join(repr(k) for k in missing)}")
    return problems


def is_network(data: Mapping[str, Any]) -> bool:
    """A systems JSON's ``is_network`` as MLPerf's checker reads it (the string ``true``, any case)."""
    return str(data.get("is_network", "")).lower() == "true"


def measurement_problems(data: Mapping[str, Any], fmt: SubmissionFormat | None = None) -> list[str]:
    """What is wrong with a measurements JSON (empty when fine)."""
    bad = [k for k in (fmt or FORMATS[DEFAULT]).measurement_fields if _empty(data.get(k))]
    return [f"field(s) missing or empty: {', '.join(repr(k) for k in bad)}"] if bad else []


def _empty(value: Any) -> bool:
    """Empty as MLPerf's checker tests it (``not value``: 0 and "" are empty), or only whitespace."""
    return not value or (isinstance(value, str) and not value.strip())



def truncate_accuracy_log(log: Path, report: Path, backup: Path) -> str:
    """MLPerf's ``truncate_accuracy_log.py`` on one accuracy folder; returns the full log's sha256.

    Appends ``"\\nhash=<sha256 of the full log>\\n"`` to ``report`` (accuracy.txt, created if absent, as
    for a TEST01 audit), as the script does (a blank line before ``hash=``), copies the full log to
    ``backup``, then keeps the log's first and last 4 KiB joined by ``"\\n\\n...\\n\\n"``. A log of
    8 KiB or less is kept whole (there is nothing to cut; MLPerf's script would fail on it).
    """
    import hashlib
    import shutil

    digest = hashlib.sha256()
    with open(log, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    value = digest.hexdigest()
    backup.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(log, backup)
    text = report.read_text(encoding="utf-8") if report.is_file() else ""
    report.write_text(text + f"\nhash={value}\n", encoding="utf-8")
    size = log.stat().st_size
    if size > 2 * VIEWABLE_BYTES:
        with open(log, "rb") as handle:
            head = handle.read(VIEWABLE_BYTES)
            handle.seek(size - VIEWABLE_BYTES)
            tail = handle.read(VIEWABLE_BYTES)
        log.write_bytes(head + TRUNCATION_MARK.encode() + tail)
    return value
