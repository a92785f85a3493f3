"""MLPerf's tree-level rules on a submission tree (``<division>/<Org>/...``), by the round's format.

Pure: a tree in, findings out. The formats are data (``suite.submission``); this module reads
them, so a new round's format needs no change here unless it brings a new kind of rule.
"""

from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path

from suite import record
from suite.check.catalogue import Finding, error
from suite.errors import RecordError
from suite.results import ACCURACY_LOG, DETAIL, read_detail
from suite.rules import RuleSet, for_benchmark
from suite.submission import SubmissionFormat, bad_name, for_rules, is_network, measurement_problems, system_problems


def format_of(bench: str) -> SubmissionFormat:
    """The submission format of the rule set that names benchmark folder ``bench``."""
    return for_rules(for_benchmark(bench))


def _files(folder: Path) -> set[str]:
    """Paths of the files under ``folder``, relative to it (symlinks not followed)."""
    out = set()
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            out.add(str((Path(dirpath) / name).relative_to(folder)))
    return out



def check_tree(org: Path) -> list[Finding]:
    """The tree-level rules of one ``<division>/<Org>`` folder.

    Each benchmark is judged by the format of the rule set that names it; the folder-level rules
    by the format of the first benchmark found (the default round's in a tree without results).
    """
    results = org / "results"
    benches = sorted(p.name for p in results.glob("*/*") if p.is_dir()) if results.is_dir() else []
    fmt = format_of(benches[0]) if benches else for_rules(None)
    findings: list[Finding] = []
    division, submitter = org.parent.name, org.name
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
            if not path.is_symlink() and path.stat().st_size > fmt.file_size_limit_bytes:
                findings.append(error("submission.size", f"{name} is over 50 MB", path))
        if not dirs and not files:
            findings.append(error("submission.empty-dir", "an empty folder", here))
    extra = sorted(p.name for p in org.iterdir() if p.name not in fmt.org_folders and p.name != "calibration.md")
    if extra:
        findings.append(error("submission.layout", f"{submitter} holds {extra} beside {list(fmt.org_folders)}", org))
    if division != "open" and not (org / "documentation/calibration.md").is_file() and not (org / "calibration.md").is_file():
        findings.append(error("submission.layout", f"documentation/calibration.md is missing (required in the {division} division)", org))
    for system_dir in sorted(p for p in results.iterdir() if p.is_dir()) if results.is_dir() else []:
        system = system_dir.name
        findings += _check_system(org, system, division, submitter, fmt)
        for bench_dir in sorted(p for p in system_dir.iterdir() if p.is_dir()):
            bench = bench_dir.name
            code = format_of(bench).code_dir
            if not (org / code / bench).is_dir():
                findings.append(error("submission.layout", f"{code}/{bench} is missing", org / code / bench))
            findings += _check_system_type(org, system, bench)
            for scen_dir in sorted(p for p in bench_dir.iterdir() if p.is_dir()):
                findings += _check_scenario(org, system, bench, scen_dir, format_of(bench))
                findings += _check_network_sut(org, system, bench, scen_dir, format_of(bench))
    systems = org / "systems"
    for path in sorted(systems.glob("*.json")) if systems.is_dir() else []:
        if not (results / path.stem).is_dir():
            findings.append(error("submission.layout", f"systems/{path.name} has no results/{path.stem}", path))
    for kind in (k for k in ("measurements", "compliance") if k in fmt.org_folders):
        base = org / kind
        for scen_dir in sorted(base.glob("*/*/*")) if base.is_dir() else []:
            rel = scen_dir.relative_to(base)
            if not (results / rel).is_dir():
                findings.append(error("submission.layout", f"{kind}/{rel} has no results/{rel}", scen_dir))
    return findings


def _check_system(org: Path, system: str, division: str, submitter: str, fmt: SubmissionFormat) -> list[Finding]:
    path = org / "systems" / f"{system}.json"
    if not path.is_file():
        return [error("submission.system", f"systems/{system}.json is missing", path)]
    try:
        data = record.read_json(path)
    except RecordError as exc:
        return [error("submission.system", f"systems/{system}.json is not JSON ({exc})", path)]
    if not isinstance(data, dict):
        return [error("submission.system", f"systems/{system}.json is not a JSON object", path)]
    return [error("submission.system", f"systems/{system}.json: {p}", path) for p in system_problems(data, division, submitter, fmt)]


def _check_system_type(org: Path, system: str, bench: str) -> list[Finding]:
    """A benchmark its rule set admits only for some system types (dlrm-v2: datacenter) under
    another one (MLPerf's checker: 'has an invalid model for system_type')."""

    allowed = [str(t) for t in RuleSet.load(for_benchmark(bench)).meta.get("system_types", [])]
    path = org / "systems" / f"{system}.json"
    try:
        data = record.read_json(path)
    except RecordError:
        return []  # _check_system reports it
    system_type = data.get("system_type") if isinstance(data, dict) else None
    # "edge,datacenter" is "datacenter,edge" to MLPerf's checker.
    if not allowed or system_type is None or _types(str(system_type)) in {_types(t) for t in allowed}:
        return []
    return [error("submission.system", f"systems/{system}.json: {bench} needs a system_type in {allowed} (got {system_type!r})", path)]


def _file_set(folder: Path, fmt: SubmissionFormat, want: frozenset[str], optional: frozenset[str] = frozenset()) -> list[Finding]:
    if not folder.is_dir():
        return [error("submission.file-set", f"{folder.name}/ is missing", folder)]
    have = _files(folder)
    missing = sorted(want - have)
    extra = sorted(p for p in have - want - optional if Path(p).name not in fmt.tolerated)
    findings = []
    if missing:
        findings.append(error("submission.file-set", f"missing {missing}", folder))
    if extra:
        findings.append(error("submission.file-set", f"files MLPerf's checker does not allow here: {extra}", folder))
    return findings


def _check_scenario(org: Path, system: str, bench: str, scen_dir: Path, fmt: SubmissionFormat) -> list[Finding]:
    scen = scen_dir.name
    findings = []
    runs = sorted(p.name for p in (scen_dir / "performance").iterdir()) if (scen_dir / "performance").is_dir() else []
    has_power = (scen_dir / "performance" / "power").is_dir()
    if has_power:
        findings += _check_power(org, system, bench, scen_dir, fmt)
    elif runs != ["run_1"]:
        findings.append(error("submission.file-set", f"performance/ must hold run_1 only (has {runs})", scen_dir / "performance"))
    others = sorted(
        p.name
        for p in scen_dir.iterdir()
        if p.name not in ("performance", "accuracy")
        and p.name not in fmt.scenario_extras
        and not (fmt.results_hold_audits and p.is_dir() and p.name.startswith("TEST"))
    )
    if others:
        findings.append(error("submission.file-set", f"{scen}/ holds {others} beside performance/ and accuracy/", scen_dir))
    if not has_power:
        findings += _file_set(scen_dir / "performance/run_1", fmt, fmt.performance_set, fmt.performance_optional)
    findings += _file_set(scen_dir / "accuracy", fmt, fmt.accuracy_set)
    log = scen_dir / "accuracy" / ACCURACY_LOG
    if log.is_file() and log.stat().st_size > fmt.max_accuracy_log_bytes:
        findings.append(
            error("submission.size", f"{ACCURACY_LOG} is {log.stat().st_size} bytes, over 10 KiB (truncate it: `suite submit` does)", log)
        )
    measured = fmt.measurements_dir(org, system, bench, scen)
    if not measured.is_dir():
        findings.append(error("submission.measurements", f"{measured.relative_to(org)} is missing", measured))
    else:
        for name in fmt.measurement_files:
            if not (measured / name).is_file():
                findings.append(error("submission.measurements", f"{name} is missing", measured / name))
            elif (measured / name).stat().st_size == 0:
                findings.append(error("submission.measurements", f"{name} is empty", measured / name))
        # MLPerf's checker takes the first <system>*.json; another name is no measurements file.
        if fmt.results_hold_audits:  # v6.0: one name, beside the runs
            jsons = [p for p in [measured / fmt.measurements_file(system)] if p.is_file()]
        else:
            jsons = sorted(p for p in measured.glob("*.json") if p.name.startswith(system))
        if not jsons:
            findings.append(error("submission.measurements", f"no {fmt.measurements_file(system)} measurements file", measured))
        for path in jsons:
            try:
                data = record.read_json(path)
            except RecordError as exc:
                findings.append(error("submission.measurements", f"{path.name} is not JSON ({exc})", path))
                continue
            for problem in measurement_problems(data if isinstance(data, dict) else {}, fmt):
                findings.append(error("submission.measurements", f"{path.name}: {problem}", path))
    compliance = fmt.compliance_dir(org, system, bench, scen)
    tests = sorted(compliance.iterdir()) if compliance.is_dir() else []
    if fmt.results_hold_audits:  # the scenario folder: its audits are the TEST* folders
        tests = [p for p in tests if p.is_dir() and p.name.startswith("TEST")]
    for test_dir in tests:
        want = fmt.audit_sets.get(test_dir.name)
        if want is None:
            findings.append(error("submission.file-set", f"{test_dir.name} is not a compliance test", test_dir))
            continue
        findings += _file_set(test_dir, fmt, *_audit_files(test_dir, want, fmt.audit_optional))
    return findings


#: TEST01's fallback files (MLPerf's REQUIRED_TEST01_ACC_FILES): the sampled queries' AUC and the
#: accuracy run's, which a verify_accuracy.txt without TEST PASS needs and a passing one forbids.
TEST01_FALLBACK = frozenset({"accuracy/baseline_accuracy.txt", "accuracy/compliance_accuracy.txt"})


def _audit_files(test_dir: Path, want: frozenset[str], optional: frozenset[str]) -> tuple[frozenset[str], frozenset[str]]:
    """An audit folder's (required, optional) files; TEST01's depend on its accuracy verdict, as in
    MLPerf's ``check_compliance_acc_dir`` (a missing verdict is reported by the compliance check)."""
    from suite.audit import PASS

    verify = test_dir / "verify_accuracy.txt"
    if test_dir.name != "TEST01" or not verify.is_file() or verify.is_symlink():
        return want, optional
    try:
        passed = PASS in record.read_text(verify, record.TEXT_CAP_BYTES)
    except RecordError:
        return want, optional
    rest = optional - TEST01_FALLBACK
    return (want, rest) if passed else (want | TEST01_FALLBACK, rest)


def _types(system_type: str) -> frozenset[str]:
    return frozenset(t.strip() for t in system_type.split(","))


def check_root(root: Path, fmt: SubmissionFormat) -> list[Finding]:
    """What sits beside the division folders and beside the org folders: MLPerf's checker allows
    only ``.md``/``.pdf`` files at the root, no unknown division folder, and no file in a division."""
    findings: list[Finding] = []
    for path in sorted(root.iterdir()):
        if path.is_dir() and not path.is_symlink():
            if path.name in fmt.root_ignored_dirs:
                continue
            if path.name not in fmt.checked_divisions:
                findings.append(error("submission.layout", f"{path.name!r} is not a division (have {list(fmt.checked_divisions)})", path))
                continue
            stray = sorted(p.name for p in path.iterdir() if not p.is_dir())
            if stray:
                findings.append(error("submission.layout", f"files outside the submitter folders: {stray}", path))
        elif not path.name.endswith(fmt.root_allowed_suffixes):
            findings.append(error("submission.layout", f"files outside the division folder: {[path.name]}", root))
    return findings


def _check_network_sut(org: Path, system: str, bench: str, scen_dir: Path, fmt: SubmissionFormat) -> list[Finding]:
    """A system over the network names its SUT with MLPerf's ``Network SUT`` in every performance run."""
    try:
        data = record.read_json(org / "systems" / f"{system}.json")
    except RecordError:
        return []  # _check_system reports it
    if not isinstance(data, dict) or not is_network(data):
        return []
    findings = []
    logs = [scen_dir / "performance/run_1" / DETAIL]
    compliance = fmt.compliance_dir(org, system, bench, scen_dir.name)
    logs += sorted(compliance.glob(f"*/performance/run_1/{DETAIL}")) if compliance.is_dir() else []
    for log in logs:
        if not log.is_file():
            continue  # the file-set checks report it
        try:
            sut = read_detail(log).get("sut_name")
        except RecordError:
            continue  # the run's own check reports it
        if fmt.network_sut_substring not in str(sut or ""):
            findings.append(
                error("submission.network", f"sut_name {sut!r} lacks {fmt.network_sut_substring!r} (a system over the network)", log)
            )
    return findings


def _check_power(org: Path, system: str, bench: str, scen_dir: Path, fmt: SubmissionFormat) -> list[Finding]:
    """A power measurement: ``performance/{power,ranging,run_1}`` with their file sets, and the
    analyzer table and power settings in the measurements folder or a parent up to the org."""
    perf = scen_dir / "performance"
    findings = []
    have = sorted(p.name for p in perf.iterdir())
    if have != ["power", "ranging", "run_1"]:
        findings.append(error("submission.power", f"performance/ must hold power, ranging and run_1 (has {have})", perf))
    for name in ("ranging", "run_1"):
        if (perf / name).is_dir():
            findings += _power_file_set(perf / name, fmt.performance_set | fmt.power_run_files, fmt.performance_optional | fmt.tolerated)
    findings += _power_file_set(perf / "power", fmt.power_files, fmt.tolerated)
    measured = fmt.measurements_dir(org, system, bench, scen_dir.name)
    here = [measured, measured.parent, measured.parent.parent, measured.parent.parent.parent]
    candidates = [p for d in here if d.is_dir() for p in d.iterdir() if p.is_file()]
    for pattern in fmt.power_measurement_patterns:
        found = [p for p in candidates if re.match(pattern, p.name)]
        if not found:
            findings.append(error("submission.power", f"no {pattern} file beside the measurements", measured))
        for path in (p for p in found if p.stat().st_size == 0):
            findings.append(error("submission.power", f"{path.name} is empty", path))
    if (perf / "run_1").is_dir():
        findings += _check_power_samples(perf / "run_1")
    return findings


#: The timestamp format of the detail log's power_begin/power_end and of spl.txt's samples.
POWER_TIME_FORMAT = "%m-%d-%Y %H:%M:%S.%f"


def _check_power_samples(run: Path) -> list[Finding]:
    """MLPerf's ``get_power_metric``: at least one positive power sample in ``spl.txt``
    (``Time,<timestamp>,Watts,<value>,...`` lines) strictly between the run's ``power_begin`` and
    ``power_end`` (detail log). A missing file is the file-set check's to report."""
    detail_path, spl = run / DETAIL, run / "spl.txt"
    if not detail_path.is_file() or not spl.is_file():
        return []
    try:
        detail = read_detail(detail_path)
        text = record.read_text(spl, record.TEXT_CAP_BYTES)
    except RecordError as exc:
        return [error("submission.power-samples", f"cannot read the power window: {exc}", run)]
    try:
        begin = datetime.strptime(str(detail.get("power_begin")), POWER_TIME_FORMAT)
        end = datetime.strptime(str(detail.get("power_end")), POWER_TIME_FORMAT)
    except ValueError:
        window = (detail.get("power_begin"), detail.get("power_end"))
        return [error("submission.power-samples", f"the detail log's power_begin/power_end are not timestamps (got {window!r})", detail_path)]
    samples = 0
    for line in text.splitlines():
        fields = line.split(",")
        if not line.startswith("Time") or len(fields) < 4:
            continue
        try:
            when, watts = datetime.strptime(fields[1], POWER_TIME_FORMAT), float(fields[3])
        except ValueError:
            continue
        samples += begin < when < end and watts > 0
    if samples == 0:
        return [error("submission.power-samples", f"spl.txt has no positive power sample between power_begin {begin} and power_end {end}", spl)]
    return []


def _power_file_set(folder: Path, want: frozenset[str], optional: frozenset[str]) -> list[Finding]:
    if not folder.is_dir():
        return [error("submission.power", f"{folder.name}/ is missing", folder)]
    have = _files(folder)
    missing, extra = sorted(want - have), sorted(have - want - optional)
    findings = []
    if missing:
        findings.append(error("submission.power", f"{folder.name}/ lacks {missing}", folder))
    if extra:
        findings.append(error("submission.power", f"{folder.name}/ holds {extra} beyond MLPerf's power file set", folder))
    return findings
