"""``suite submit``: a results tree in, an MLPerf inference v5.1 submission tree out, or nothing.

The tree (``suite.submission`` states its rules)::

    <out>/<division>/<Org>/code/<benchmark>/README.md
                           documentation/calibration.md
                           systems/<system>.json
                           results/<system>/<benchmark>/<Scenario>/performance/run_1/  mlperf_log_{detail,summary}.txt
                           results/<system>/<benchmark>/<Scenario>/accuracy/  + accuracy.txt (hash=), mlperf_log_accuracy.json (truncated)
                           measurements/<system>/<benchmark>/<Scenario>/  <system>.json  user.conf  README.md
                           compliance/<system>/<benchmark>/<Scenario>/TEST01/ ...
    <out>-summary.csv                  the checker's summary CSV (outside the tree: MLPerf allows no root files)
    <out>-accuracy-logs/...            the full accuracy logs the tree holds truncated

It is refused, with nothing written, when the results fail ``suite check``, when a name has
whitespace or a path separator, when a symlink leads out of the results tree, when a required
systems field is empty, or when the built tree fails ``suite check``. Everything is built in a
temporary folder beside ``<out>`` and renamed into place at the end.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shlex
import shutil
import socket
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from suite.audit import RESULT_FIELD
from suite.check import CheckReport, RunFolder, check, discover, table
from suite.config import Mode
from suite.errors import ConfigError, RefusedError, ResultExistsError
from suite.results import ACCURACY_LOG, DETAIL, SUMMARY, read_detail
from suite.submission import (
    AUDIT_OPTIONAL,
    AUDIT_SETS,
    DIVISIONS,
    SYSTEM_FIELDS,
    bad_name,
    system_problems,
    truncate_accuracy_log,
)

#: The round the tree is laid out for and checked against.
VERSION = "v5.1"
#: The summary CSV's columns, as MLPerf's v5.1.1 checker writes them.
CSV_COLUMNS = (
    "Organization", "Availability", "Division", "SystemType", "SystemName", "Platform", "Model", "MlperfModel",
    "Scenario", "Result", "Accuracy", "number_of_nodes", "host_processor_model_name", "host_processors_per_node",
    "host_processor_core_count", "accelerator_model_name", "accelerators_per_node", "Location", "framework",
    "operating_system", "notes", "compliance", "errors", "version", "inferred", "has_power", "Units",
    "weight_data_types",
)  # fmt: skip
UNITS = {"Offline": "Samples/s", "Server": "Queries/s", "SingleStream": "Latency (ms)", "MultiStream": "Latency (ms)"}
FRAMEWORKS = {"torch-cpu": "PyTorch", "torch-cuda": "PyTorch", "onnxruntime": "ONNX Runtime", "null": "none (null backend)"}


@dataclass(frozen=True, kw_only=True)
class SubmitRequest:
    """What ``suite submit`` was asked to do.

    Attributes:
        results: a results tree of ``suite run`` / ``suite audit``.
        org: the submitter (``closed/<org>/...``).
        division: ``closed`` or ``open``.
        out: the submission root to create; it must not exist.
        system_json: a JSON object of systems fields (for every system), or of such objects keyed
            by system name; its values win over what the machine tells.
    """

    results: Path
    org: str
    division: str
    out: Path
    system_json: Path | None = None

    def __post_init__(self) -> None:
        if self.division not in DIVISIONS:
            raise ConfigError(f"'division' must be one of {list(DIVISIONS)} (got {self.division!r})")
        if why := bad_name(self.org):
            raise ConfigError(f"'org' {self.org!r} {why}")
        if why := bad_name(self.out.name):
            raise ConfigError(f"'out' {str(self.out)!r}: its name {why}")

    @property
    def summary_csv(self) -> Path:
        return self.out.with_name(f"{self.out.name}-summary.csv")

    @property
    def backup(self) -> Path:
        return self.out.with_name(f"{self.out.name}-accuracy-logs")


@dataclass
class ScenarioRuns:
    """One (system, benchmark, scenario) of the results tree, and what its runs recorded."""

    system: str
    model_dir: str
    scenario: str
    source: Path
    benchmark: str
    rules: str
    profile: str
    config: dict[str, Any]
    settings: dict[str, Any]
    backend: dict[str, Any]
    environment: dict[str, Any]
    accuracy: dict[str, Any]
    performance: dict[str, Any]
    audits: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Submission:
    """What ``suite submit`` wrote."""

    path: Path
    summary_csv: Path
    backup: Path
    report: CheckReport
    rows: int
    profile: str


def submit(request: SubmitRequest) -> Submission:
    """Build, check and publish the submission tree of ``request``.

    Raises:
        ConfigError: a bad name, an existing output, a required systems field left empty.
        RefusedError: the results or the built tree fail ``suite check``; nothing was written.
    """
    results = request.results
    if not results.is_dir():
        raise ConfigError(f"'results' {str(results)!r} is not a folder")
    for path in (request.out, request.summary_csv, request.backup):
        if path.exists() or path.is_symlink():
            raise ResultExistsError(f"{path} already exists; `suite submit` writes a new submission only")
    _refuse_escapes(results)
    runs = discover(results)
    if not runs:
        raise ConfigError(f"no run folder (<Scenario>/performance/run_1 or <Scenario>/accuracy) under {results}")
    source = check([results])
    if not source.passed:
        raise RefusedError(f"{results} fails `suite check`; no submission written", table(source))
    scenarios = _scenarios(runs)
    profiles = sorted({s.profile for s in scenarios})
    rule_sets = sorted({s.rules for s in scenarios})
    if len(profiles) > 1:
        raise RefusedError(f"the runs mix profiles {profiles}; one submission holds runs of one profile")
    systems = {s.system: _system_json(request, [x for x in scenarios if x.system == s.system]) for s in scenarios}

    request.out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{request.out.name}.partial-", dir=request.out.parent))
    try:
        tree, backup = staging / "tree", staging / "backup"
        org = tree / request.division / request.org
        rows = [_build(org, backup, s, systems[s.system], request) for s in scenarios]
        _write_shared(org, scenarios, systems, request)
        report = check([tree], rules=rule_sets[0] if len(rule_sets) == 1 else None, profile=profiles[0])
        if not report.passed:
            raise RefusedError("the built submission fails `suite check`; no submission written", table(report))
        _write_csv(staging / "summary.csv", rows)
        os.replace(staging / "summary.csv", request.summary_csv)
        try:
            os.replace(backup, request.backup)
            os.replace(tree, request.out)
        except OSError:
            request.summary_csv.unlink(missing_ok=True)
            if request.backup.is_dir() and not request.out.exists():
                shutil.rmtree(request.backup, ignore_errors=True)
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    report = _relocate(report, staging / "tree", request.out)
    return Submission(request.out, request.summary_csv, request.backup, report, len(rows), profiles[0])


# Reading the results ------------------------------------------------------------------------


def _refuse_escapes(root: Path) -> None:
    """No symlink under ``root`` may lead out of it; no name may hold whitespace or a separator."""
    top = root.resolve()
    escapes, bad = [], []
    for dirpath, dirs, files in os.walk(root):
        here = Path(dirpath)
        for name in dirs + files:
            path = here / name
            if path.is_symlink():
                target = path.resolve()
                if target != top and top not in target.parents:
                    escapes.append(f"{path} -> {os.readlink(path)}")
            if any(c.isspace() for c in name):
                bad.append(str(path))
    if escapes:
        raise RefusedError(f"symlinks lead out of {root}: {', '.join(escapes)}; no submission written")
    if bad:
        raise RefusedError(f"names with whitespace under {root}: {', '.join(bad)}; no submission written")


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise RefusedError(f"{path} cannot be read ({exc}); no submission written") from None
    return data if isinstance(data, dict) else {}


def _scenarios(runs: list[RunFolder]) -> list[ScenarioRuns]:
    groups: dict[Path, dict[Mode, RunFolder]] = {}
    for run in runs:
        groups.setdefault(run.scenario_dir, {})[run.mode] = run
    out = []
    for scen_dir, by_mode in sorted(groups.items()):
        perf, acc = by_mode[Mode.PERFORMANCE], by_mode[Mode.ACCURACY]  # check() required both
        for name in (perf.system, perf.benchmark, perf.scenario):  # the accuracy run's are the same folders
            if why := bad_name(name):
                raise ConfigError(f"{name!r} {why} ({perf.path})")
        pconf, aconf = _json(perf.path / "config.json"), _json(acc.path / "config.json")
        presult, aresult = _json(perf.path / "result.json"), _json(acc.path / "result.json")
        keys = ("benchmark", "rules", "variant", "profile")
        pset = {k: pconf.get(k, (pconf.get("settings") or {}).get(k)) for k in keys}
        aset = {k: aconf.get(k, (aconf.get("settings") or {}).get(k)) for k in keys}
        if pset != aset:
            raise RefusedError(f"{scen_dir}: the performance and accuracy runs differ in {pset} vs {aset}")
        benchmark = str(pset["benchmark"] or perf.benchmark)
        if why := bad_name(benchmark):
            raise ConfigError(f"benchmark {benchmark!r} {why}")
        settings = pconf.get("settings") or {}
        out.append(
            ScenarioRuns(
                system=perf.system,
                model_dir=perf.benchmark,
                scenario=perf.scenario,
                source=scen_dir,
                benchmark=benchmark,
                rules=str(settings.get("rules")),
                profile=str(settings.get("profile")),
                config=pconf.get("config") or {},
                settings=settings,
                backend=presult.get("backend") or {},
                environment=presult.get("environment") or {},
                accuracy=aresult.get("accuracy") or {},
                performance=presult.get("performance") or {},
                audits=sorted(t for t in AUDIT_SETS if (scen_dir / t).is_dir()),
            )
        )
    return out


# The systems JSON ---------------------------------------------------------------------------


def _user_systems(path: Path | None, system: str) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"'system-json' {str(path)!r} is not readable JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"'system-json' {str(path)!r} must hold a JSON object")
    if data and all(isinstance(v, dict) for v in data.values()):
        return dict(data.get(system, {}))  # keyed by system name
    return dict(data)


def _system_json(request: SubmitRequest, scenarios: list[ScenarioRuns]) -> dict[str, Any]:
    """The systems JSON of one system: the machine's probe (if the runs came from this host), the
    runs' own records, then ``--system-json``; a required field nobody filled is an error."""
    from suite import sysinfo

    first = scenarios[0]
    system = first.system
    env = first.environment
    devices = {str(s.backend.get("device", "cpu")) for s in scenarios}
    accelerated = sorted(d for d in devices if _accelerator(d))
    auto: dict[str, Any] = {}
    for device in accelerated[:1]:
        # torch-cuda records "<GPU name> (<N> GiB)"; the probe below wins on the same host.
        m = re.fullmatch(r"(.+) \((\d+) GiB\)", device)
        if m:
            auto.update(accelerator_model_name=m.group(1), accelerator_memory_capacity=f"{m.group(2)} GB")
    if env.get("hostname") == socket.gethostname():
        auto.update(sysinfo.probe(with_accelerators=bool(accelerated)))
    elif env.get("cpu"):
        auto["host_processor_model_name"] = env["cpu"]
    if not accelerated:
        auto.update(sysinfo.NO_ACCELERATOR)
    versions = env.get("versions") or {}
    frameworks = sorted({_framework(s.backend) for s in scenarios})
    stack = [f"Python {env['python']}"] if env.get("python") else []
    stack += [f"{name} {versions[name]}" for name in ("mlcommons-loadgen", "numpy", "recsuite") if name in versions]
    auto.update(
        {
            "division": request.division,
            "submitter": request.org,
            "system_name": system,
            "system_type": "datacenter",
            "framework": ", ".join(frameworks),
            "other_software_stack": ", ".join(stack),
            "sw_notes": f"recsuite {versions.get('recsuite', '')}, backend(s) "
            + ", ".join(sorted({f"{s.backend.get('name')} ({s.backend.get('device')}, {s.backend.get('precision')})" for s in scenarios})),
        }
    )
    data = {k: "" for k in SYSTEM_FIELDS}
    data.update(auto)
    data.update(_user_systems(request.system_json, system))
    problems = system_problems(data, request.division, request.org)
    if problems:
        raise ConfigError(f"systems/{system}.json: {'; '.join(problems)} (give them in --system-json FILE)")
    return data


def _accelerator(device: str) -> bool:
    """Whether a backend's recorded device is an accelerator (not ``cpu``, ``none`` or ORT's CPU provider)."""
    d = device.strip().lower()
    return not (d in ("", "none", "null") or d.startswith("cpu"))


def _framework(backend: Mapping[str, Any]) -> str:
    name = str(backend.get("name", ""))
    label = FRAMEWORKS.get(name, name)
    version = backend.get("version")
    return f"{label} {version}" if version and name != "null" else label


# Writing the tree ---------------------------------------------------------------------------


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)


def _build(org: Path, backup: Path, s: ScenarioRuns, system: dict[str, Any], request: SubmitRequest) -> dict[str, Any]:
    rel = Path(s.system) / s.benchmark / s.scenario
    res = org / "results" / rel
    for name in (DETAIL, SUMMARY):
        _copy(s.source / "performance/run_1" / name, res / "performance/run_1" / name)
        _copy(s.source / "accuracy" / name, res / "accuracy" / name)
    _copy(s.source / "accuracy/accuracy.txt", res / "accuracy/accuracy.txt")
    _copy(s.source / "accuracy" / ACCURACY_LOG, res / "accuracy" / ACCURACY_LOG)
    backup_rel = Path(request.division) / request.org / "results" / rel / "accuracy" / ACCURACY_LOG
    truncate_accuracy_log(res / "accuracy" / ACCURACY_LOG, res / "accuracy/accuracy.txt", backup / backup_rel)
    for test in s.audits:
        src, dst = s.source / test, org / "compliance" / rel / test
        for name in sorted(AUDIT_SETS[test] | AUDIT_OPTIONAL):
            if (src / name).is_file():
                _copy(src / name, dst / name)
    meas = org / "measurements" / rel
    meas.mkdir(parents=True, exist_ok=True)
    (meas / f"{s.system}.json").write_text(json.dumps(_measurements(s), indent=2) + "\n")
    (meas / "user.conf").write_text(_user_conf(s))
    (meas / "README.md").write_text(_scenario_readme(s, request))
    return _csv_row(s, system, request, res)


def _measurements(s: ScenarioRuns) -> dict[str, Any]:
    precision = str(s.backend.get("precision") or s.config.get("precision") or "fp32")
    model = s.config.get("model") or {}
    weights = model.get("weights")
    checkpoint = (
        f"checkpoint {Path(str(weights['path'])).name} (sha256 {weights['sha256']})"
        if isinstance(weights, dict) and "path" in weights and "sha256" in weights
        else "no checkpoint file"
    )
    return {
        "input_data_types": "fp32 (dense features), int64 (sparse indices)",
        "retraining": "No",
        "starting_weights_filename": f"{model.get('name')} generated by recsuite (scale {model.get('scale')}, seed {model.get('seed')}); "
        + checkpoint,
        "weight_data_types": precision,
        "weight_transformations": "none" if precision == "fp32" else f"fp32 weights cast to {precision} at load",
    }


def _user_conf(s: ScenarioRuns) -> str:
    """The settings the run gave LoadGen beyond its built-in mlperf.conf, as user.conf lines."""
    st, key = s.settings, f"{s.settings.get('loadgen_model')}.{s.scenario}"
    lines = [f"# The LoadGen settings of {s.benchmark} {s.scenario} (recsuite rules {s.rules!r}, profile {s.profile!r})."]
    if s.scenario in ("Server", "Offline"):
        lines.append(f"{key}.target_qps = {st.get('target_qps')}")
    if s.scenario == "Server":
        lines.append(f"{key}.target_latency = {int(st.get('target_latency_ns', 0)) / 1e6:g}")
    if s.scenario != "Offline":
        lines.append(f"{key}.target_latency_percentile = {100 * float(st.get('target_latency_percentile', 0.99)):g}")
    lines.append(f"{key}.min_duration = {st.get('min_duration_ms')}")
    lines.append(f"{key}.min_query_count = {st.get('min_query_count')}")
    if st.get("performance_sample_count"):
        lines.append(f"{key}.performance_sample_count_override = {st.get('performance_sample_count')}")
    user_conf = s.config.get("user_conf")
    if user_conf and Path(user_conf).is_file():
        lines.append(f"# The run's own user.conf ({Path(user_conf).name}), applied on top:")
        lines += Path(user_conf).read_text().splitlines()
    return "\n".join(lines) + "\n"


def run_command(config: Mapping[str, Any], mode: str, audit: str | None = None) -> str:
    """The ``suite run`` (or ``suite audit``) command line that reproduces a run from its config."""
    model = config.get("model") or {}
    args = ["suite", "audit", audit] if audit else ["suite", "run"]
    args += ["--model", str(model.get("name")), "--scale", str(model.get("scale")), "--seed", str(model.get("seed", 0))]
    args += ["--backend", str(config.get("backend")), "--scenario", str(config.get("scenario", "")).lower()]
    args += ["--profile", str(config.get("profile")), "--rules", str(config.get("rules"))]
    optional = [
        ("variant", "--variant"), ("target_qps", "--target-qps"), ("query_size", "--query-size"), ("rows", "--rows"),
        ("dataset", "--dataset"), ("user_conf", "--user-conf"), ("max_batch_items", "--max-batch-items"),
        ("batch_timeout_us", "--batch-timeout-us"), ("workers", "--workers"),
    ]  # fmt: skip
    for key, flag in optional:
        if config.get(key) is not None:
            args += [flag, str(config[key])]
    if config.get("threads"):
        args += ["--threads", str(config["threads"])]
    if config.get("precision", "fp32") != "fp32":
        args += ["--precision", str(config["precision"])]
    for key, value in config.get("backend_options") or []:
        args += ["--option", f"{key}={value}"]
    args += ["--system", str(config.get("system")), "--output", "results"]
    if not audit:
        args += ["--mode", mode]
    return shlex.join(args)


def _commands(s: ScenarioRuns) -> list[str]:
    cmds = [run_command(s.config, "performance"), run_command(s.config, "accuracy")]
    cmds += [run_command(s.config, "performance", audit=t) for t in s.audits]
    return cmds


def _scenario_readme(s: ScenarioRuns, request: SubmitRequest) -> str:
    metric = (s.performance.get("metric") or {})
    return (
        f"# {s.benchmark} {s.scenario} on {s.system}\n\n"
        f"Made with recsuite (rules `{s.rules}`, variant `{s.settings.get('variant')}`, profile `{s.profile}`), "
        f"backend `{s.backend.get('name')}` {s.backend.get('version', '')} on `{s.backend.get('device')}`, "
        f"precision `{s.backend.get('precision')}`.\n\n"
        f"Result: {metric.get('value')} {metric.get('units')}; accuracy AUC {100 * float(s.accuracy.get('auc', 0.0)):.3f}% "
        f"(reference: {s.accuracy.get('reference_source', 'the dataset')}).\n\n"
        "## Reproduce\n\n```sh\n" + "\n".join(_commands(s)) + "\n"
        f"suite submit --results results --org {shlex.quote(request.org)} --division {request.division} "
        f"--out {shlex.quote(request.out.name)}\n```\n"
        + ("" if s.profile == "official" else f"\nProfile `{s.profile}` is shorter than MLPerf's rules: check with `suite check --profile {s.profile}`.\n")
    )


def _write_shared(org: Path, scenarios: list[ScenarioRuns], systems: dict[str, dict[str, Any]], request: SubmitRequest) -> None:
    for name, data in systems.items():
        path = org / "systems" / f"{name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2) + "\n")
    for bench in sorted({s.benchmark for s in scenarios}):
        mine = [s for s in scenarios if s.benchmark == bench]
        path = org / "code" / bench / "README.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        body = [f"# {bench}: recsuite\n", "The benchmark runs on recsuite (`pip install recsuite`), driven by MLPerf's LoadGen "
                f"{(mine[0].environment.get('versions') or {}).get('mlcommons-loadgen', '')}.\n", "## Reproduce\n"]  # fmt: skip
        for s in mine:
            body.append(f"### {s.system} {s.scenario}\n\n```sh\n" + "\n".join(_commands(s)) + "\n```\n")
        path.write_text("\n".join(body))
    doc = org / "documentation" / "calibration.md"
    doc.parent.mkdir(parents=True, exist_ok=True)
    precisions = sorted({str(s.backend.get("precision", "fp32")) for s in scenarios})
    doc.write_text(
        "# Calibration\n\nNo calibration or quantization: the weights are recsuite's generated fp32 weights, "
        f"run at {', '.join(precisions)}; no calibration data set was used.\n"
    )


# The summary CSV ----------------------------------------------------------------------------


#: The latency a stream scenario's row falls back to without early stopping.
LATENCY_FALLBACK = {
    "SingleStream": "result_90.00_percentile_latency_ns",
    "MultiStream": "result_99.00_percentile_per_query_latency_ns",
}


def _csv_row(s: ScenarioRuns, system: dict[str, Any], request: SubmitRequest, res: Path) -> dict[str, Any]:
    detail = read_detail(s.source / "performance/run_1" / DETAIL)
    result = detail.get(RESULT_FIELD[s.scenario])
    if s.scenario in LATENCY_FALLBACK:  # a latency in ns, shown in ms
        result = (result or detail.get(LATENCY_FALLBACK[s.scenario]) or 0) / 1e6
    notes = str(system.get("hw_notes", ""))
    if system.get("sw_notes"):
        notes = (notes + ". " if notes else "") + str(system["sw_notes"])
    location = Path(request.division) / request.org / "results" / s.system / s.benchmark / s.scenario
    return {
        "Organization": request.org,
        "Availability": system.get("status"),
        "Division": request.division,
        "SystemType": system.get("system_type"),
        "SystemName": system.get("system_name"),
        "Platform": s.system,
        "Model": s.benchmark,
        "MlperfModel": s.benchmark,
        "Scenario": s.scenario,
        "Result": result,
        "Accuracy": f"AUC: {100 * float(s.accuracy.get('auc', 0.0)):.3f}",
        "number_of_nodes": system.get("number_of_nodes"),
        "host_processor_model_name": system.get("host_processor_model_name"),
        "host_processors_per_node": system.get("host_processors_per_node"),
        "host_processor_core_count": system.get("host_processor_core_count"),
        "accelerator_model_name": system.get("accelerator_model_name"),
        "accelerators_per_node": system.get("accelerators_per_node"),
        "Location": str(location),
        "framework": system.get("framework", ""),
        "operating_system": system.get("operating_system", ""),
        "notes": notes,
        "compliance": 1,
        "errors": 0,
        "version": VERSION,
        "inferred": 0,
        "has_power": False,
        "Units": UNITS.get(s.scenario, ""),
        "weight_data_types": str(_measurements(s)["weight_data_types"]),
    }


#: The columns MLPerf's checker wraps in double quotes (it writes its CSV by hand).
_QUOTED = {"SystemType", "SystemName", "host_processor_model_name", "accelerator_model_name", "accelerators_per_node",
           "framework", "operating_system", "notes", "weight_data_types"}  # fmt: skip


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    """The summary CSV as the checker writes it: its header, its quoting, one row per result."""
    lines = [",".join(CSV_COLUMNS)]
    for row in rows:
        cells = []
        for col in CSV_COLUMNS:
            value = str(row[col])
            cells.append('"' + value.replace('"', "'") + '"' if col in _QUOTED else value)
        lines.append(",".join(cells))
    path.write_text("\n".join(lines) + "\n")


def _relocate(report: CheckReport, old: Path, new: Path) -> CheckReport:
    """The report of the staged tree, with its paths under the published one."""
    def move(p: str) -> str:
        return p.replace(str(old), str(new), 1)

    out = CheckReport(runs=[Path(move(str(p))) for p in report.runs])
    out.findings = [dataclasses.replace(f, path=move(f.path)) for f in report.findings]
    return out
