"""``suite submit``: a results tree in, an MLPerf inference v5.1 submission tree out, or nothing.

The tree (``suite.submission`` states its rules)::

    <out>/<division>/<Org>/code/<benchmark>/README.md
                           documentation/calibration.md
                           systems/<system>.json
                           results/<system>/<benchmark>/<Scenario>/performance/run_1/  mlperf_log_{detail,summary}.txt
                           results/<system>/<benchmark>/<Scenario>/accuracy/  + accuracy.txt (hash=), mlperf_log_accuracy.json (truncated)
                           measurements/<system>/<benchmark>/<Scenario>/  <system>.json  user.conf  README.md
                           compliance/<system>/<benchmark>/<Scenario>/TEST01/ ...
    (mlperf-v6.0, dlrm-v3: src/<benchmark>/ for code; TEST08/, measurements.json, user.conf and
     README.md in results/<system>/<benchmark>/<Scenario>/; suite.submission.mlperf_v6_0)
    <out>-summary.csv                  the checker's summary CSV (outside the tree: MLPerf allows no root files)
    <out>-accuracy-logs/...            the full accuracy logs the tree holds truncated

It is refused, with nothing written, when the results fail ``suite check``, when a name has
whitespace or a path separator, when a symlink leads out of the results tree, when a required
systems field is empty, or when the built tree fails ``suite check``. Everything is built in a
temporary folder beside ``<out>`` and renamed into place at the end.

Size: this module is over 450 lines because it builds the whole submission tree; the format moves to versioned data (issue 13, helper `check`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import shutil
import socket
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from suite import record, scenarios
from suite.check import CheckReport, check, table
from suite.config import Mode
from suite.errors import ConfigError, RecordError, RefusedError, ResultExistsError, SuiteError
from suite.record import (
    AccuracyRecord,
    BackendRecord,
    ConfigRecord,
    EnvironmentRecord,
    MetricRecord,
    PerformanceRecord,
    ResultRecord,
    RunConfigRecord,
    SettingsRecord,
)  # fmt: skip
from suite.results import ACCURACY_LOG, DETAIL, SUMMARY, read_detail
from suite.submission import DEFAULT, SubmissionFormat, bad_name, for_rules, system_problems, truncate_accuracy_log
from suite.tree import RunFolder, discover


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
        divisions = for_rules(DEFAULT).divisions
        if self.division not in divisions:
            raise ConfigError(f"'division' must be one of {list(divisions)} (got {self.division!r})")
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
    config: RunConfigRecord
    settings: SettingsRecord
    backend: BackendRecord
    environment: EnvironmentRecord
    accuracy: AccuracyRecord
    performance: PerformanceRecord
    audits: list[str] = field(default_factory=list)
    #: The accuracy run's and each audit's own run configuration (their commands differ from the
    #: performance run's: target QPS, threads...).
    accuracy_config: RunConfigRecord | None = None
    audit_configs: dict[str, RunConfigRecord] = field(default_factory=dict)
    #: (nodes, devices per node) of the performance run (``ResultRecord.topology``); None for a
    #: record from before ``placement`` was recorded.
    topology: tuple[int, int] | None = None

    @property
    def format(self) -> SubmissionFormat:
        """The submission format of the rule set the runs were made under."""
        return for_rules(self.rules)


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
    open_only = [f for f in source.findings if f.rule == "settings.query-size"]
    if request.division == "closed" and open_only:
        raise RefusedError(
            f"{len(open_only)} run(s) under {results} are open division only (their query sizes are not the closed "
            "division's); no submission written (use --division open)",
            table(CheckReport(runs=source.runs, findings=open_only)),
        )
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
        _write_csv(staging / "summary.csv", rows, for_rules(rule_sets[0] if len(rule_sets) == 1 else None))
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


_R = TypeVar("_R", ConfigRecord, ResultRecord)


def _record(kind: type[_R], path: Path) -> _R:
    """A run's record, bounded and validated (``suite check`` passed it; this guards a change since)."""
    try:
        return kind.read(path)
    except RecordError as exc:
        raise RefusedError(f"{path}: {record.describe(exc, path.name)[0]}; no submission written") from None


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
        pconf, aconf = _record(ConfigRecord, perf.path / "config.json"), _record(ConfigRecord, acc.path / "config.json")
        presult, aresult = _record(ResultRecord, perf.path / "result.json"), _record(ResultRecord, acc.path / "result.json")

        def recorded(conf: ConfigRecord) -> dict[str, str | None]:
            st = conf.settings or SettingsRecord()
            return {"benchmark": conf.benchmark or st.benchmark, "rules": st.rules, "variant": st.variant, "profile": st.profile}

        pset, aset = recorded(pconf), recorded(aconf)
        if pset != aset:
            raise RefusedError(f"{scen_dir}: the performance and accuracy runs differ in {pset} vs {aset}")
        benchmark = str(pset["benchmark"] or perf.benchmark)
        if why := bad_name(benchmark):
            raise ConfigError(f"benchmark {benchmark!r} {why}")
        settings = pconf.settings or SettingsRecord()
        out.append(
            ScenarioRuns(
                system=perf.system,
                model_dir=perf.benchmark,
                scenario=pconf.config.scenario,  # the record's, not the folder's (check() made them agree)
                source=scen_dir,
                benchmark=benchmark,
                rules=str(settings.rules),
                profile=str(settings.profile),
                config=pconf.config,
                settings=settings,
                backend=presult.backend or BackendRecord(),
                environment=presult.environment or EnvironmentRecord(),
                accuracy=aresult.accuracy or AccuracyRecord(),
                performance=presult.performance or PerformanceRecord(),
                audits=(audits := sorted(t for t in for_rules(settings.rules).audit_sets if (scen_dir / t).is_dir())),
                accuracy_config=aconf.config,
                audit_configs={t: _record(ConfigRecord, path).config for t in audits
                               if (path := scen_dir / t / "performance/run_1/config.json").is_file()},
                topology=presult.topology if presult.placement is not None else None,
            )
        )
    return out


# The systems JSON ---------------------------------------------------------------------------


def _user_systems(path: Path | None, system: str) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        data = record.read_json(path)
    except RecordError as exc:
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
    devices = {s.backend.device or "cpu" for s in scenarios}
    accelerated = sorted(d for d in devices if _accelerator(d))
    auto: dict[str, Any] = {}
    # The backend's structured record of its accelerator; the probe below wins on the same host.
    for backend in [s.backend for s in scenarios if s.backend.accelerator_model][:1]:
        auto["accelerator_model_name"] = backend.accelerator_model
        if backend.accelerator_memory_bytes is not None:
            auto["accelerator_memory_capacity"] = sysinfo.memory_capacity(backend.accelerator_memory_bytes)
    if env.hostname == socket.gethostname():
        auto.update(sysinfo.probe(with_accelerators=bool(accelerated)))
    elif env.cpu:
        auto["host_processor_model_name"] = env.cpu
    if not accelerated:
        auto.update(sysinfo.NO_ACCELERATOR)
    # The nodes and accelerators the runs used (their placement), not what the probe saw on this host.
    known = [s.topology for s in scenarios if s.topology is not None]
    auto["number_of_nodes"] = max((t[0] for t in known), default=1)
    if accelerated and known:
        auto["accelerators_per_node"] = max(t[1] for t in known)
    versions = env.versions
    frameworks = sorted({_framework(s.backend) for s in scenarios})
    stack = [f"Python {env.python}"] if env.python else []
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
            + ", ".join(sorted({f"{s.backend.name} ({s.backend.device}, {s.backend.precision})" for s in scenarios})),
        }
    )
    fmt = first.format
    data = {k: "" for k in fmt.system_fields}
    data.update(auto)
    data.update(_user_systems(request.system_json, system))
    problems = system_problems(data, request.division, request.org, fmt)
    if problems:
        raise ConfigError(f"systems/{system}.json: {'; '.join(problems)} (give them in --system-json FILE)")
    return data


def _accelerator(device: str) -> bool:
    """Whether a backend's recorded device is an accelerator (not ``cpu``, ``none`` or ORT's CPU provider)."""
    d = device.strip().lower()
    return not (d in ("", "none", "null") or d.startswith("cpu"))


def _declared(name: str) -> tuple[str, str]:
    """The framework and device kind a registered backend declares (its class's ``framework`` and
    ``device_kind``), ("", "") when unknown here."""
    from suite.backends import get_backend

    try:
        cls = get_backend(name)
    except SuiteError:
        return "", ""
    return str(cls.framework), str(cls.device_kind)


def _framework(backend: BackendRecord) -> str:
    name = backend.name or ""
    framework, kind = _declared(name)
    label = framework or name
    version = backend.version
    # A backend that computes nothing (device kind "none") has no framework version to name.
    return f"{label} {version}" if version and kind != "none" else label


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
        src, dst = s.source / test, s.format.compliance_dir(org, s.system, s.benchmark, s.scenario) / test
        for name in sorted(s.format.audit_sets[test] | s.format.audit_optional):
            if (src / name).is_file():
                _copy(src / name, dst / name)
        if (dst / "accuracy" / ACCURACY_LOG).is_file():
            # truncate_accuracy_log.py treats TEST01's accuracy log as the accuracy run's.
            audit_rel = dst.relative_to(org.parent.parent) / "accuracy" / ACCURACY_LOG
            truncate_accuracy_log(dst / "accuracy" / ACCURACY_LOG, dst / "accuracy/accuracy.txt", backup / audit_rel)
    meas = s.format.measurements_dir(org, s.system, s.benchmark, s.scenario)
    meas.mkdir(parents=True, exist_ok=True)
    (meas / s.format.measurements_file(s.system)).write_text(json.dumps(_measurements(s), indent=2) + "\n")
    (meas / "user.conf").write_text(_user_conf(s))
    (meas / "README.md").write_text(_scenario_readme(s, request))
    return _csv_row(s, system, request, res)


def _measurements(s: ScenarioRuns) -> dict[str, Any]:
    precision = s.backend.precision or s.config.precision or "fp32"
    model = s.config.model
    weights = model.extra.get("weights")
    checkpoint = (
        f"checkpoint {Path(str(weights['path'])).name} (sha256 {weights['sha256']})"
        if isinstance(weights, Mapping) and "path" in weights and "sha256" in weights
        else "no checkpoint file"
    )
    return {
        "input_data_types": "fp32 (dense features), int64 (sparse indices)",
        "retraining": "No",
        "starting_weights_filename": f"{model.name} generated by recsuite (scale {model.scale}, seed {model.seed}); "
        + checkpoint,
        "weight_data_types": precision,
        "weight_transformations": weight_transformations(precision, s.backend.to_dict()),
    }


def weight_transformations(precision: str, backend: Mapping[str, Any]) -> str:
    """What was done to the generated fp32 weights at load, from the backend's record (torch-cuda's
    ``fused`` entry says how its fused kernels store tables and run the dense layers)."""
    fused = backend.get("fused")
    int8 = backend.get("int8")  # torch-cpu's and onnxruntime's --precision int8: what was quantized how
    if isinstance(int8, Mapping):
        return (f"fp32 weights quantized at load: embedding rows {int8.get('embedding_rows')}; dense layers "
                f"{int8.get('dense')}; calibration: {int8.get('calibration')}")
    if not isinstance(fused, Mapping):
        return "none" if precision == "fp32" else f"fp32 weights cast to {precision} at load"
    rows = {"int8": "int8 with a per-row fp32 scale and bias", "fp8": "fp8 e4m3 with a per-row fp32 scale"}.get(
        str(fused.get("rows")), str(fused.get("rows")))
    text = f"fp32 weights converted at load: embedding rows to {rows}"
    if fused.get("dense") == "fp8":
        calibration = fused.get("calibration")
        items = calibration.get("items") if isinstance(calibration, Mapping) else "?"
        text += ("; cross-network and top-MLP weights to fp8 e4m3 with one scale per output channel, their inputs "
                 f"with one static scale per tensor calibrated on {items} generated items; bottom MLP and the last "
                 "layer in bf16")
    else:
        text += f"; dense layers cast to {precision}"
    return text


def _user_conf(s: ScenarioRuns) -> str:
    """The settings the run gave LoadGen beyond its built-in mlperf.conf, as user.conf lines."""
    st, key = s.settings, f"{s.settings.loadgen_model}.{s.scenario}"
    lines = [f"# The LoadGen settings of {s.benchmark} {s.scenario} (recsuite rules {s.rules!r}, profile {s.profile!r})."]
    row = scenarios.by_name(s.scenario)
    assert row is not None, s.scenario  # _scenarios keeps only runs of a known scenario
    if row.qps_setting is not None:
        lines.append(f"{key}.target_qps = {st.target_qps}")
    if row.server_latency:
        lines.append(f"{key}.target_latency = {(st.target_latency_ns or 0) / 1e6:g}")
    if row.latency_bound:
        pct = st.target_latency_percentile if st.target_latency_percentile is not None else 0.99
        lines.append(f"{key}.target_latency_percentile = {100 * pct:g}")
    lines.append(f"{key}.min_duration = {st.min_duration_ms}")
    lines.append(f"{key}.min_query_count = {st.min_query_count}")
    # What LoadGen ran with (the rule's count capped by a smaller dataset), not the rule's number.
    detail = s.source / "performance/run_1" / DETAIL
    effective = read_detail(detail).get("effective_performance_sample_count") if detail.is_file() else None
    if effective or st.performance_sample_count:
        lines.append(f"{key}.performance_sample_count_override = {effective or st.performance_sample_count}")
    user_conf = s.config.user_conf
    if user_conf and Path(user_conf).is_file():
        lines.append(f"# The run's own user.conf ({Path(user_conf).name}), applied on top:")
        try:
            lines += record.read_text(Path(user_conf), record.TEXT_CAP_BYTES).splitlines()
        except RecordError as exc:
            raise RefusedError(f"the run's user.conf: {exc}; no submission written") from None
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
        ("batch_timeout_us", "--batch-timeout-us"), ("workers", "--workers"), ("devices", "--devices"),
        ("processes", "--processes"),
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
    """Each run's command from its own record (the accuracy run and audits may differ from the
    performance run in target QPS, threads...)."""
    cmds = [run_command(s.config.to_dict(), "performance"), run_command((s.accuracy_config or s.config).to_dict(), "accuracy")]
    cmds += [run_command((s.audit_configs.get(t) or s.config).to_dict(), "performance", audit=t) for t in s.audits]
    return cmds


def _value(value: float | None) -> str:
    """A metric as result.json wrote it (LoadGen's integers stay integers)."""
    return str(int(value)) if value is not None and value.is_integer() else str(value)


def _scenario_readme(s: ScenarioRuns, request: SubmitRequest) -> str:
    metric = s.performance.metric or MetricRecord()
    return (
        f"# {s.benchmark} {s.scenario} on {s.system}\n\n"
        f"Made with recsuite (rules `{s.rules}`, variant `{s.settings.variant}`, profile `{s.profile}`), "
        f"backend `{s.backend.name}` {s.backend.version or ''} on `{s.backend.device}`, "
        f"precision `{s.backend.precision}`.\n\n"
        f"Result: {_value(metric.value)} {metric.units}; accuracy AUC {100 * (s.accuracy.auc or 0.0):.3f}% "
        f"(reference: {s.accuracy.reference_source or 'the dataset'}).\n\n"
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
        path = org / mine[0].format.code_dir / bench / "README.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        body = [f"# {bench}: recsuite\n", "The benchmark runs on recsuite (`pip install recsuite`), driven by MLPerf's LoadGen "
                f"{mine[0].environment.versions.get('mlcommons-loadgen', '')}.\n", "## Reproduce\n"]  # fmt: skip
        for s in mine:
            body.append(f"### {s.system} {s.scenario}\n\n```sh\n" + "\n".join(_commands(s)) + "\n```\n")
        path.write_text("\n".join(body))
    doc = org / "documentation" / "calibration.md"
    doc.parent.mkdir(parents=True, exist_ok=True)
    precisions = sorted({s.backend.precision or "fp32" for s in scenarios})
    quantized = sorted({weight_transformations(s.backend.precision or "fp32", s.backend.to_dict())
                        for s in scenarios if isinstance(s.backend.extra.get("fused"), Mapping)
                        or isinstance(s.backend.extra.get("int8"), Mapping)})
    if quantized:
        doc.write_text("# Calibration\n\nThe weights are recsuite's generated fp32 weights, quantized at load "
                       "(no MLPerf calibration data set was used):\n\n" + "".join(f"- {q}\n" for q in quantized))
    else:
        doc.write_text(
            "# Calibration\n\nNo calibration or quantization: the weights are recsuite's generated fp32 weights, "
            f"run at {', '.join(precisions)}; no calibration data set was used.\n"
        )


# The summary CSV ----------------------------------------------------------------------------


def _csv_row(s: ScenarioRuns, system: dict[str, Any], request: SubmitRequest, res: Path) -> dict[str, Any]:
    detail = read_detail(s.source / "performance/run_1" / DETAIL)
    row = scenarios.by_name(s.scenario)
    result = detail.get(row.submission_field) if row is not None else None
    if row is not None and row.latency_fallback is not None:  # a latency in ns, shown in ms
        result = (result or detail.get(row.latency_fallback) or 0) / 1e6
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
        "Accuracy": f"AUC: {100 * (s.accuracy.auc or 0.0):.3f}",
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
        "version": s.format.version,
        "inferred": 0,
        "has_power": False,
        "Units": row.submission_units if row is not None else "",
        "weight_data_types": str(_measurements(s)["weight_data_types"]),
    }


#: The columns MLPerf's checker wraps in double quotes (it writes its CSV by hand).
def _write_csv(path: Path, rows: list[dict[str, Any]], fmt: SubmissionFormat) -> None:
    """The summary CSV as the checker writes it: its header, its quoting, one row per result."""
    lines = [",".join(fmt.csv_columns)]
    for row in rows:
        cells = []
        for col in fmt.csv_columns:
            value = str(row[col])
            cells.append('"' + value.replace('"', "'") + '"' if col in fmt.csv_quoted else value)
        lines.append(",".join(cells))
    path.write_text("\n".join(lines) + "\n")


def _relocate(report: CheckReport, old: Path, new: Path) -> CheckReport:
    """The report of the staged tree, with its paths under the published one."""
    def move(p: str) -> str:
        return p.replace(str(old), str(new), 1)

    out = CheckReport(runs=[Path(move(str(p))) for p in report.runs])
    out.findings = [dataclasses.replace(f, path=move(f.path)) for f in report.findings]
    return out
