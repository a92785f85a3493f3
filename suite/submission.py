"""MLPerf inference v5.1's submission tree as data, and the tree-level checks ``suite check`` runs on it.

The layout (``closed/<Org>/...``), the exact file sets and the ``systems/<system>.json`` fields are
those of MLPerf's v5.1.1 submission checker (``tools/submission/submission_checker.py`` at tag
v5.1.1): a run folder holds exactly its set (LoadGen's trace file, ``results.json`` and
``.gitkeep`` are tolerated), the system description has every required key and a value in each
"meaningful" one, and the tree holds no symlinks, no empty folders, no names with spaces or a
leading dot, no file over 50 MB and no accuracy log over 10 KiB.

These checks are pure: a tree in, findings out (see ``suite.check``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from suite import record
from suite.errors import RecordError
from suite.results import ACCURACY_LOG, DETAIL, SUMMARY

if TYPE_CHECKING:
    from suite.check import Finding

DIVISIONS = ("closed", "open")
STATUSES = ("available", "preview", "rdi")
SYSTEM_TYPES = ("datacenter", "edge", "datacenter,edge")
ORG_FOLDERS = ("code", "systems", "results", "measurements", "compliance", "documentation")

#: SYSTEM_DESC_REQUIRED_FIELDS: every key must be present.
SYSTEM_FIELDS = (
    "division", "submitter", "status", "system_name", "number_of_nodes", "host_processor_model_name",
    "host_processors_per_node", "host_processor_core_count", "host_memory_capacity", "host_storage_capacity",
    "host_storage_type", "accelerators_per_node", "accelerator_model_name", "accelerator_memory_capacity",
    "framework", "operating_system", "system_type", "other_software_stack", "host_processor_frequency",
    "host_processor_caches", "host_memory_configuration", "host_processor_interconnect", "host_networking",
    "host_networking_topology", "accelerator_frequency", "accelerator_host_interconnect", "accelerator_interconnect",
    "accelerator_interconnect_topology", "accelerator_memory_configuration", "accelerator_on-chip_memories",
    "cooling", "hw_notes", "sw_notes", "host_network_card_count", "system_type_detail",
)  # fmt: skip
#: SYSTEM_DESC_MEANINGFUL_RESPONSE_REQUIRED_FIELDS: these must also be non-empty.
SYSTEM_MEANINGFUL_FIELDS = (
    "division", "submitter", "system_type", "status", "system_name", "number_of_nodes",
    "host_processor_model_name", "host_processors_per_node", "host_processor_core_count", "host_memory_capacity",
    "host_memory_configuration", "host_storage_capacity", "host_storage_type", "host_networking",
    "host_network_card_count", "host_networking_topology", "accelerators_per_node", "accelerator_model_name",
    "accelerator_memory_capacity", "accelerator_host_interconnect", "accelerator_memory_configuration",
    "accelerator_interconnect", "cooling", "framework", "operating_system", "other_software_stack",
)  # fmt: skip
#: SYSTEM_IMP_REQUIRED_FILES: the keys of a measurements JSON, all non-empty.
MEASUREMENT_FIELDS = (
    "input_data_types", "retraining", "starting_weights_filename", "weight_data_types", "weight_transformations",
)  # fmt: skip
MEASUREMENT_FILES = ("user.conf", "README.md")

PERFORMANCE_SET = frozenset({DETAIL, SUMMARY})
PERFORMANCE_OPTIONAL = frozenset({ACCURACY_LOG})
ACCURACY_SET = frozenset({DETAIL, SUMMARY, "accuracy.txt", ACCURACY_LOG})
#: Extras the v5.1.1 checker lets a run folder hold.
TOLERATED = frozenset({"mlperf_log_trace.json", "results.json", ".gitkeep"})
#: Files of each audit folder (``compliance/.../<Scenario>/<TEST>``), relative to it.
AUDIT_SETS: dict[str, frozenset[str]] = {
    "TEST01": frozenset({
        "verify_accuracy.txt", "verify_performance.txt", f"performance/run_1/{DETAIL}", f"performance/run_1/{SUMMARY}",
        f"accuracy/{ACCURACY_LOG}", "accuracy/accuracy.txt",
    }),
    "TEST04": frozenset({"verify_performance.txt", f"performance/run_1/{DETAIL}", f"performance/run_1/{SUMMARY}"}),
    "TEST05": frozenset({"verify_performance.txt", f"performance/run_1/{DETAIL}", f"performance/run_1/{SUMMARY}"}),
}  # fmt: skip
#: TEST01's fallback files (the AUC of the sampled queries) may join its accuracy folder.
AUDIT_OPTIONAL = frozenset({"accuracy/baseline_accuracy.txt", "accuracy/compliance_accuracy.txt"})

FILE_SIZE_LIMIT_BYTES = 50 * 1024 * 1024
MAX_ACCURACY_LOG_BYTES = 10 * 1024
#: truncate_accuracy_log.py keeps this much of each end.
VIEWABLE_BYTES = 4096
#: MLPerf's truncate_accuracy_log.py joins the two ends with this.
TRUNCATION_MARK = "\n\n...\n\n"


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


def system_problems(data: Mapping[str, Any], division: str | None = None, submitter: str | None = None) -> list[str]:
    """What is wrong with a ``systems/<system>.json``, one message per problem (empty when fine)."""
    problems = []
    missing = [k for k in SYSTEM_FIELDS if k not in data]
    if missing:
        problems.append(f"required field(s) missing: {', '.join(repr(k) for k in missing)}")
    empty = [k for k in SYSTEM_MEANINGFUL_FIELDS if k in data and _empty(data[k])]
    if empty:
        problems.append(f"required field(s) empty: {', '.join(repr(k) for k in empty)}")
    if not _empty(data.get("status")) and str(data.get("status")).lower() not in STATUSES:
        problems.append(f"'status' must be one of {list(STATUSES)} (got {data.get('status')!r})")
    if not _empty(data.get("system_type")) and data.get("system_type") not in SYSTEM_TYPES:
        problems.append(f"'system_type' must be one of {list(SYSTEM_TYPES)} (got {data.get('system_type')!r})")
    if division is not None and data.get("division") not in (None, "", division):
        problems.append(f"'division' is {data.get('division')!r}, the tree's is {division!r}")
    if submitter is not None and data.get("submitter") not in (None, "", submitter):
        problems.append(f"'submitter' is {data.get('submitter')!r}, the tree's is {submitter!r}")
    if division == "closed" and str(data.get("is_network", "")).lower() == "true":
        # MLPerf's checker: a system over the network belongs to the network division.
        problems.append("'is_network' is true, which the closed division does not allow")
    return problems


def measurement_problems(data: Mapping[str, Any]) -> list[str]:
    """What is wrong with a measurements JSON (empty when fine)."""
    bad = [k for k in MEASUREMENT_FIELDS if _empty(data.get(k))]
    return [f"field(s) missing or empty: {', '.join(repr(k) for k in bad)}"] if bad else []


def _empty(value: Any) -> bool:
    """Empty as MLPerf's checker tests it (``not value``: 0 and "" are empty), or only whitespace."""
    return not value or (isinstance(value, str) and not value.strip())


def _files(folder: Path) -> set[str]:
    """Paths of the files under ``folder``, relative to it (symlinks not followed)."""
    out = set()
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            out.add(str((Path(dirpath) / name).relative_to(folder)))
    return out


def org_dirs(root: Path) -> list[Path]:
    """The ``<division>/<Org>`` folders at or under ``root`` (a submission root, a division or an org)."""
    if root.parent.name in DIVISIONS and (root / "results").is_dir():
        return [root]
    found = []
    for division in [root] if root.name in DIVISIONS else [root / d for d in DIVISIONS]:
        if division.is_dir():
            found += sorted(p for p in division.iterdir() if p.is_dir() and not p.is_symlink())
    return found


def check_tree(org: Path) -> list[Finding]:
    """The tree-level rules of one ``<division>/<Org>`` folder."""
    from suite.check import error

    from suite.submission_format import detect

    findings: list[Finding] = []
    division, submitter = org.parent.name, org.name
    layout = detect(org)
    # Names, symlinks, sizes, empty folders: over everything below the submission root's division.
    for dirpath, dirs, files in os.walk(org):
        here = Path(dirpath)
        for name in dirs + files:
            path = here / name
            if path.is_symlink():
                findings.append(error("submission.symlink", f"{name} is a symlink (a submission holds real files only)", path))
            if why := bad_name(name):
                findings.append(error("submission.name", f"{name!r} {why}", path))
        for name in files:
            path = here / name
            if not path.is_symlink() and path.stat().st_size > FILE_SIZE_LIMIT_BYTES:
                findings.append(error("submission.size", f"{name} is over 50 MB", path))
        if not dirs and not files:
            findings.append(error("submission.empty-dir", "an empty folder", here))
    root_files = [p.name for p in org.parent.parent.iterdir() if p.is_file()] if org.parent.parent.is_dir() else []
    if root_files:
        findings.append(error("submission.layout", f"files outside the division folder: {sorted(root_files)}", org.parent.parent))
    extra = sorted(p.name for p in org.iterdir() if p.name not in layout.org_folders and p.name != "calibration.md")
    if extra:
        findings.append(error("submission.layout", f"{submitter} holds {extra} beside {list(layout.org_folders)}", org))
    if division == "closed" and not (org / "documentation/calibration.md").is_file() and not (org / "calibration.md").is_file():
        findings.append(error("submission.layout", "documentation/calibration.md is missing (required in the closed division)", org))
    results = org / "results"
    for system_dir in sorted(p for p in results.iterdir() if p.is_dir()) if results.is_dir() else []:
        system = system_dir.name
        findings += _check_system(org, system, division, submitter)
        for bench_dir in sorted(p for p in system_dir.iterdir() if p.is_dir()):
            bench = bench_dir.name
            if not (org / layout.code_dir / bench).is_dir():
                findings.append(error("submission.layout", f"{layout.code_dir}/{bench} is missing", org / layout.code_dir / bench))
            findings += _check_system_type(org, system, bench)
            for scen_dir in sorted(p for p in bench_dir.iterdir() if p.is_dir()):
                findings += _check_scenario(org, system, bench, scen_dir)
    systems = org / "systems"
    for path in sorted(systems.glob("*.json")) if systems.is_dir() else []:
        if not (results / path.stem).is_dir():
            findings.append(error("submission.layout", f"systems/{path.name} has no results/{path.stem}", path))
    for kind in ("measurements", "compliance") if not layout.in_results else ():
        base = org / kind
        for scen_dir in sorted(base.glob("*/*/*")) if base.is_dir() else []:
            rel = scen_dir.relative_to(base)
            if not (results / rel).is_dir():
                findings.append(error("submission.layout", f"{kind}/{rel} has no results/{rel}", scen_dir))
    return findings


def _check_system(org: Path, system: str, division: str, submitter: str) -> list[Finding]:
    from suite.check import error

    path = org / "systems" / f"{system}.json"
    if not path.is_file():
        return [error("submission.system", f"systems/{system}.json is missing", path)]
    try:
        data = record.read_json(path)
    except RecordError as exc:
        return [error("submission.system", f"systems/{system}.json is not JSON ({exc})", path)]
    if not isinstance(data, dict):
        return [error("submission.system", f"systems/{system}.json is not a JSON object", path)]
    return [error("submission.system", f"systems/{system}.json: {p}", path) for p in system_problems(data, division, submitter)]


def _check_system_type(org: Path, system: str, bench: str) -> list[Finding]:
    """A benchmark its rule set admits only for some system types (dlrm-v2: datacenter) under
    another one (MLPerf's checker: 'has an invalid model for system_type')."""
    from suite.check import error
    from suite.rules import RuleSet, for_benchmark

    allowed = [str(t) for t in RuleSet.load(for_benchmark(bench)).meta.get("system_types", [])]
    path = org / "systems" / f"{system}.json"
    try:
        data = record.read_json(path)
    except RecordError:
        return []  # _check_system reports it
    system_type = data.get("system_type") if isinstance(data, dict) else None
    if not allowed or system_type is None or system_type in allowed:
        return []
    return [error("submission.system", f"systems/{system}.json: {bench} needs a system_type in {allowed} (got {system_type!r})", path)]


def _file_set(folder: Path, want: frozenset[str], optional: frozenset[str] = frozenset()) -> list[Finding]:
    from suite.check import error

    if not folder.is_dir():
        return [error("submission.file-set", f"{folder.name}/ is missing", folder)]
    have = _files(folder)
    missing = sorted(want - have)
    extra = sorted(p for p in have - want - optional if Path(p).name not in TOLERATED)
    findings = []
    if missing:
        findings.append(error("submission.file-set", f"missing {missing}", folder))
    if extra:
        findings.append(error("submission.file-set", f"files MLPerf's checker does not allow here: {extra}", folder))
    return findings


def _check_scenario(org: Path, system: str, bench: str, scen_dir: Path) -> list[Finding]:
    from suite.check import error
    from suite.submission_format import TEST08_OPTIONAL, TEST08_SET, detect

    layout = detect(org)
    scen = scen_dir.name
    findings = []
    runs = sorted(p.name for p in (scen_dir / "performance").iterdir()) if (scen_dir / "performance").is_dir() else []
    if runs != ["run_1"]:
        findings.append(error("submission.file-set", f"performance/ must hold run_1 only (has {runs})", scen_dir / "performance"))
    others = sorted(
        p.name for p in scen_dir.iterdir()
        if p.name not in ("performance", "accuracy") and p.name not in layout.scenario_extras
        and not (layout.in_results and p.is_dir() and p.name.startswith("TEST"))
    )
    if others:
        findings.append(error("submission.file-set", f"{scen}/ holds {others} beside performance/ and accuracy/", scen_dir))
    findings += _file_set(scen_dir / "performance/run_1", PERFORMANCE_SET, PERFORMANCE_OPTIONAL)
    findings += _file_set(scen_dir / "accuracy", ACCURACY_SET)
    log = scen_dir / "accuracy" / ACCURACY_LOG
    if log.is_file() and log.stat().st_size > MAX_ACCURACY_LOG_BYTES:
        findings.append(
            error("submission.size", f"{ACCURACY_LOG} is {log.stat().st_size} bytes, over 10 KiB (truncate it: `suite submit` does)", log)
        )
    measured = layout.measurements_dir(org, system, bench, scen)
    if not measured.is_dir():
        findings.append(error("submission.measurements", f"measurements/{system}/{bench}/{scen} is missing", measured))
    else:
        for name in MEASUREMENT_FILES:
            if not (measured / name).is_file():
                findings.append(error("submission.measurements", f"{name} is missing", measured / name))
        jsons = sorted(measured.glob("*.json")) if not layout.in_results else [measured / layout.measurements_file(system)]
        if layout.in_results and not jsons[0].is_file():
            jsons = []
        if not jsons:
            findings.append(error("submission.measurements", f"no {system}.json measurements file", measured))
        for path in jsons:
            try:
                data = record.read_json(path)
            except RecordError as exc:
                findings.append(error("submission.measurements", f"{path.name} is not JSON ({exc})", path))
                continue
            for problem in measurement_problems(data if isinstance(data, dict) else {}):
                findings.append(error("submission.measurements", f"{path.name}: {problem}", path))
    compliance = layout.compliance_dir(org, system, bench, scen)
    tests = [p for p in sorted(compliance.iterdir()) if not layout.in_results or (p.is_dir() and p.name.startswith("TEST"))] if compliance.is_dir() else []
    for test_dir in tests:
        if test_dir.name == "TEST08":
            findings += _file_set(test_dir, TEST08_SET, TEST08_OPTIONAL)
            continue
        want = AUDIT_SETS.get(test_dir.name)
        if want is None:
            findings.append(error("submission.file-set", f"{test_dir.name} is not a compliance test", test_dir))
            continue
        findings += _file_set(test_dir, want, AUDIT_OPTIONAL)
    return findings


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
