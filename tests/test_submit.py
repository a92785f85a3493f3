"""``suite submit``: MLPerf's tree and file sets from smoke runs, refusal that leaves nothing behind."""

from __future__ import annotations

import csv as csvlib
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import invoke_valid

from suite import rules
from suite.check import check
from suite.cli import cli
from suite.record import BackendRecord
from suite.results import read_detail
from suite.submission import for_rules
from suite.submit import ScenarioRuns

SMOKE = ["--model", "dlrm-rmc1", "--scale", "tiny", "--profile", "smoke", "--no-progress"]
NULL_SERVER = [*SMOKE, "--backend", "null", "--scenario", "server", "--target-qps", "1000", "--system", "sys1"]
#: What the machine cannot tell; the rest of systems/sys1.json is probed or taken from the runs.
SYSTEM = {
    "status": "available", "host_memory_configuration": "8x 16 GB DDR5", "host_storage_type": "NVMe SSD",
    "host_networking": "Ethernet 25 Gb/s", "host_network_card_count": "1", "host_networking_topology": "N/A",
    "cooling": "air", "host_storage_capacity": "1 TB", "host_processor_model_name": "AMD EPYC",
    "host_memory_capacity": "24 GB",
}  # fmt: skip
BENCH = "closed/Acme/{kind}/sys1/dlrm-rmc1-99/Server"
#: Exactly the tree MLPerf's checker accepted (reference mlperf.md section 7), for one scenario.
EXPECTED = {
    "closed/Acme/code/dlrm-rmc1-99/README.md",
    "closed/Acme/documentation/calibration.md",
    "closed/Acme/systems/sys1.json",
    *(BENCH.format(kind="measurements") + "/" + f for f in ("sys1.json", "user.conf", "README.md")),
    *(BENCH.format(kind="results") + "/performance/run_1/" + f for f in ("mlperf_log_detail.txt", "mlperf_log_summary.txt")),
    *(BENCH.format(kind="results") + "/accuracy/" + f
      for f in ("accuracy.txt", "mlperf_log_accuracy.json", "mlperf_log_detail.txt", "mlperf_log_summary.txt")),
    *(BENCH.format(kind="compliance") + "/TEST01/" + f for f in (
        "verify_accuracy.txt", "verify_performance.txt", "performance/run_1/mlperf_log_detail.txt",
        "performance/run_1/mlperf_log_summary.txt", "accuracy/mlperf_log_accuracy.json", "accuracy/accuracy.txt")),
}  # fmt: skip


@pytest.fixture(scope="module")
def mlperf_results(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Iterator[Path]:
    """dlrm-rmc1 standing in for dlrm-v2 under mlperf-v5.1 (as in test_audit): Server, both runs,
    TEST01. The copied table requires only Server and gates AUC at 0% (the null backend's 50% AUC):
    the test is about the tree, not the model."""
    base = tmp_path_factory.mktemp("submit")
    rules_dir = Path(shutil.copytree(rules.rules_dir(), base / "rules"))
    table = rules_dir / "mlperf-v5.1.toml"
    text = table.read_text().replace('"dlrm-v2"', '"dlrm-rmc1"').replace('"dlrm-v2.', '"dlrm-rmc1.')
    text = text.replace('required_scenarios = ["Offline", "Server"]', 'required_scenarios = ["Server"]')
    text = text.replace('"*.*.accuracy_target" = 0.999', '"*.*.accuracy_target" = 0.0')
    text = text.replace('"*.*.accuracy_target" = 0.99', '"*.*.accuracy_target" = 0.0')
    table.write_text(text)
    out = base / "results"
    runner = CliRunner()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RECSUITE_RULES_DIR", str(rules_dir))
        args = [*NULL_SERVER, "--rules", "mlperf-v5.1", "--output", str(out)]
        for mode in ("performance", "accuracy"):
            result = invoke_valid(runner, [*args, "--mode", mode])
            assert result.exit_code == 0, result.output
        result = runner.invoke(cli, ["audit", "TEST01", *args])
        for _ in range(2):
            if result.exit_code == 1 and "performance TEST FAIL" in result.stdout:
                result = runner.invoke(cli, ["audit", "TEST01", *args, "--overwrite"])  # a busy 2-core box, as in test_audit
        assert result.exit_code == 0, result.output
        yield out


@pytest.fixture
def system_json(tmp_path: Path) -> Path:
    path = tmp_path / "system.json"
    path.write_text(json.dumps(SYSTEM))
    return path


def files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() or p.is_symlink()}


def test_submission_passes_check_and_has_mlperf_file_sets(mlperf_results: Path, system_json: Path, tmp_path: Path) -> None:
    sub = tmp_path / "sub"
    result = CliRunner().invoke(cli, ["submit", "--results", str(mlperf_results), "--org", "Acme", "--out", str(sub),
                                      "--system-json", str(system_json)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-3:] == [
        f"submission: 1 result(s) -> {sub} (profile smoke: check it with `suite check --profile smoke`)",
        f"summary: {tmp_path / 'sub-summary.csv'}",
        f"full accuracy logs: {tmp_path / 'sub-accuracy-logs'}",
    ]
    assert files(sub) == EXPECTED
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sub", "sub-accuracy-logs", "sub-summary.csv", "system.json"]
    # suite check passes the tree (the smoke profile's durations); official rules fail it, as they should.
    checked = CliRunner().invoke(cli, ["check", str(sub), "--profile", "smoke"])
    assert checked.exit_code == 0, checked.output
    assert {f.rule for f in check([sub]).errors} == {
        "settings.min-duration", "settings.performance-sample-count", "accuracy.coverage",
    }
    # Truncated as MLPerf does: first and last 4 KiB, the full log's sha256 appended as hash=.
    acc = sub / BENCH.format(kind="results") / "accuracy"
    full = tmp_path / "sub-accuracy-logs" / BENCH.format(kind="results") / "accuracy/mlperf_log_accuracy.json"
    original = mlperf_results / "sys1/dlrm-rmc1/Server/accuracy/mlperf_log_accuracy.json"
    assert full.read_bytes() == original.read_bytes()
    raw = full.read_bytes()
    assert (acc / "mlperf_log_accuracy.json").read_bytes() == raw[:4096] + b"\n\n...\n\n" + raw[-4096:]
    lines = (acc / "accuracy.txt").read_text().splitlines()
    assert lines[0].startswith("AUC=50.000%") and lines[-1] == f"hash={hashlib.sha256(raw).hexdigest()}"
    # systems/sys1.json: every required field, probed, from the runs, or from --system-json.
    system = json.loads((sub / "closed/Acme/systems/sys1.json").read_text())
    assert system["division"] == "closed" and system["submitter"] == "Acme" and system["status"] == "available"
    assert system["accelerators_per_node"] == "0" and system["accelerator_model_name"] == "N/A"
    assert system["framework"] == "none (null backend)" and "mlcommons-loadgen 6.0.17" in system["other_software_stack"]
    measured = json.loads((sub / BENCH.format(kind="measurements") / "sys1.json").read_text())
    assert set(measured) == {"input_data_types", "retraining", "starting_weights_filename", "weight_data_types", "weight_transformations"}
    conf = (sub / BENCH.format(kind="measurements") / "user.conf").read_text()
    assert "dlrm-rmc1.Server.target_qps = 1000.0\n" in conf and "dlrm-rmc1.Server.target_latency = 60\n" in conf
    readme = (sub / BENCH.format(kind="measurements") / "README.md").read_text()
    assert "suite audit TEST01 --model dlrm-rmc1 --scale tiny --seed 0 --backend null --scenario server --profile smoke" in readme
    # The summary CSV: MLPerf's header, one row per (system, benchmark, scenario).
    csv = (tmp_path / "sub-summary.csv").read_text().splitlines()
    assert csv[0] == ",".join(for_rules('mlperf-v5.1').csv_columns) and len(csv) == 2
    row = next(csvlib.reader(csv[1:]))
    assert len(row) == len(for_rules('mlperf-v5.1').csv_columns) and row[:3] == ["Acme", "available", "closed"] and row[6:9] == ["dlrm-rmc1-99", "dlrm-rmc1-99", "Server"]
    assert row[10] == "AUC: 50.000" and row[-2] == "Queries/s" and row[23] == "v5.1"


def test_submit_names_the_empty_system_fields(mlperf_results: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["submit", "--results", str(mlperf_results), "--org", "Acme", "--out", str(tmp_path / "sub")])
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: systems/sys1.json: required field(s) empty: 'status', ")
    assert "'cooling'" in result.stderr and result.stderr.endswith(" (give them in --system-json FILE)\n")
    assert list(tmp_path.iterdir()) == []


def test_a_failing_run_makes_submit_refuse_and_leave_nothing(runner: CliRunner, tmp_path: Path, system_json: Path) -> None:
    """A real failing run: DLRM-RMC1 Offline on the null backend at an expected 2000 QPS (the rule
    table's number; the default is now calibrated) is over in well under the smoke profile's 1 s
    (INVALID), and its 50% AUC fails DeepRecSys's gate."""
    results = tmp_path / "results"
    for mode in ("performance", "accuracy"):
        result = runner.invoke(cli, ["run", *SMOKE, "--backend", "null", "--scenario", "offline", "--system", "sys2",
                                     "--target-qps", "2000", "--output", str(results), "--mode", mode])  # fmt: skip
        assert result.exit_code == 0, result.output
    out = tmp_path / "pub" / "sub"
    result = runner.invoke(cli, ["submit", "--results", str(results), "--org", "Acme", "--out", str(out), "--system-json", str(system_json)])
    assert result.exit_code == 1
    assert result.stderr.endswith(f"Error: {results} fails `suite check`; no submission written\n")
    assert "loadgen.invalid" in result.stderr and "accuracy.gate" in result.stderr
    assert not (tmp_path / "pub").exists() or list((tmp_path / "pub").iterdir()) == []


def test_a_failing_built_tree_is_removed(mlperf_results: Path, tmp_path: Path, system_json: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """If the tree it built fails the checker (here: a truncation gone wrong), nothing is published."""
    import suite.submit

    def bad_truncate(log: Path, report: Path, backup: Path) -> str:
        backup.parent.mkdir(parents=True, exist_ok=True)
        return "0" * 64  # no hash= written, log left whole (over 10 KiB)

    monkeypatch.setattr(suite.submit, "truncate_accuracy_log", bad_truncate)
    result = CliRunner().invoke(cli, ["submit", "--results", str(mlperf_results), "--org", "Acme", "--out", str(tmp_path / "sub"),
                                      "--system-json", str(system_json)])  # fmt: skip
    assert result.exit_code == 1
    assert result.stderr.endswith("Error: the built submission fails `suite check`; no submission written\n")
    assert "submission.size" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["system.json"]


@pytest.mark.parametrize(
    ("org", "message"),
    [("Acme Corp", "Error: 'org' 'Acme Corp' contains whitespace\n"), ("Acme/x", "Error: 'org' 'Acme/x' contains a path separator\n")],
)
def test_submit_refuses_bad_names(org: str, message: str, mlperf_results: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["submit", "--results", str(mlperf_results), "--org", org, "--out", str(tmp_path / "sub")])
    assert (result.exit_code, result.stderr) == (2, message)


def test_submit_follows_no_symlink_out_of_the_results(mlperf_results: Path, tmp_path: Path, system_json: Path) -> None:
    results = Path(shutil.copytree(mlperf_results, tmp_path / "results"))
    summary = results / "sys1/dlrm-rmc1/Server/performance/run_1/mlperf_log_summary.txt"
    outside = tmp_path / "elsewhere.txt"
    outside.write_text(summary.read_text())
    summary.unlink()
    os.symlink(outside, summary)
    result = CliRunner().invoke(cli, ["submit", "--results", str(results), "--org", "Acme", "--out", str(tmp_path / "sub"),
                                      "--system-json", str(system_json)])  # fmt: skip
    assert result.exit_code == 1
    assert result.stderr == f"Error: symlinks lead out of {results}: {summary} -> {outside}; no submission written\n"
    assert not (tmp_path / "sub").exists()


def test_check_reports_mlperf_tree_rules(mlperf_results: Path, tmp_path: Path, system_json: Path) -> None:
    sub = tmp_path / "sub"
    result = CliRunner().invoke(cli, ["submit", "--results", str(mlperf_results), "--org", "Acme", "--out", str(sub),
                                      "--system-json", str(system_json)])  # fmt: skip
    assert result.exit_code == 0, result.output
    (sub / BENCH.format(kind="measurements") / "user.conf").unlink()
    (sub / BENCH.format(kind="results") / "performance/run_1/notes.txt").write_text("extra")
    system = sub / "closed/Acme/systems/sys1.json"
    system.write_text(json.dumps({**json.loads(system.read_text()), "cooling": ""}))
    (sub / "closed/Acme/code/empty dir").mkdir()
    found = {(f.rule, f.message) for f in check([sub], profile="smoke").errors}
    assert found == {
        ("submission.measurements", "user.conf is missing"),
        ("submission.file-set", "files MLPerf's checker does not allow here: ['notes.txt']"),
        ("submission.system", "systems/sys1.json: required field(s) empty: 'cooling'"),
        ("submission.name", "'empty dir' contains whitespace"),
        ("submission.empty-dir", "an empty folder"),
    }


def test_closed_submit_refuses_runs_of_other_query_sizes(mlperf_results: Path, system_json: Path, tmp_path: Path) -> None:
    """Closed division runs MLPerf's quantile sizes; a run recorded with fixed:1 is open division:
    `suite check` says so (a warning) and `submit --division closed` refuses it."""
    results = Path(shutil.copytree(mlperf_results, tmp_path / "results"))
    perf = results / "sys1/dlrm-rmc1/Server/performance/run_1"
    for name in ("config.json", "result.json"):
        data = json.loads((perf / name).read_text())
        data["settings"]["query_size"] = "fixed:1"
        (perf / name).write_text(json.dumps(data))
    report = check([results])
    assert report.passed and [(f.rule, f.severity.value) for f in report.findings] == [("settings.query-size", "warning")]
    assert report.findings[0].message == (
        "query sizes 'fixed:1' are not mlperf-v5.1's closed-division 'mlperf' (MLPerf's quantile distribution): "
        "this result is open division"
    )
    args = ["submit", "--results", str(results), "--org", "Acme", "--system-json", str(system_json)]
    closed = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "closed")])
    assert closed.exit_code == 1 and "are open division only" in closed.stderr and "settings.query-size" in closed.stderr
    assert not (tmp_path / "closed").exists()
    opened = CliRunner().invoke(cli, [*args, "--division", "open", "--out", str(tmp_path / "open")])
    assert opened.exit_code == 0, opened.output
    assert (tmp_path / "open/open/Acme/results").is_dir()


def test_reproduce_commands_come_from_each_runs_own_record(mlperf_results: Path, system_json: Path, tmp_path: Path) -> None:
    """The accuracy run's command carries its own settings, not the performance run's; user.conf
    states the performance sample count LoadGen used."""
    results = Path(shutil.copytree(mlperf_results, tmp_path / "results"))
    acc = results / "sys1/dlrm-rmc1/Server/accuracy"
    for name in ("config.json", "result.json"):
        data = json.loads((acc / name).read_text())
        data["config"]["target_qps"], data["config"]["threads"] = 5000.0, 2
        (acc / name).write_text(json.dumps(data))
    sub = tmp_path / "sub"
    result = CliRunner().invoke(cli, ["submit", "--results", str(results), "--org", "Acme", "--out", str(sub),
                                      "--system-json", str(system_json)])  # fmt: skip
    assert result.exit_code == 0, result.output
    commands = [line for line in (sub / "closed/Acme/code/dlrm-rmc1-99/README.md").read_text().splitlines() if line.startswith("suite ")]
    assert len(commands) == 3
    assert "--target-qps 1000.0" in commands[0] and "--threads" not in commands[0] and commands[0].endswith("--mode performance")
    assert "--target-qps 5000.0" in commands[1] and "--threads 2" in commands[1] and commands[1].endswith("--mode accuracy")
    assert commands[2].startswith("suite audit TEST01") and "--target-qps 1000.0" in commands[2]
    detail = read_detail(results / "sys1/dlrm-rmc1/Server/performance/run_1/mlperf_log_detail.txt")
    conf = (sub / BENCH.format(kind="measurements") / "user.conf").read_text()
    assert f"dlrm-rmc1.Server.performance_sample_count_override = {detail.get('effective_performance_sample_count')}\n" in conf


def test_accuracy_txt_and_test01_logs_as_truncate_accuracy_log_leaves_them(mlperf_results: Path, system_json: Path, tmp_path: Path) -> None:
    """A blank line before hash=; TEST01's accuracy log truncated and hashed like the accuracy
    run's; TEST01's accuracy.txt holds only the accuracy script's AUC line."""
    sub = tmp_path / "sub"
    result = CliRunner().invoke(cli, ["submit", "--results", str(mlperf_results), "--org", "Acme", "--out", str(sub),
                                      "--system-json", str(system_json)])  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = (sub / BENCH.format(kind="results") / "accuracy/accuracy.txt").read_text().splitlines()
    assert lines[-2] == "" and lines[-1].startswith("hash=")
    test01 = sub / BENCH.format(kind="compliance") / "TEST01/accuracy"
    full = tmp_path / "sub-accuracy-logs" / BENCH.format(kind="compliance") / "TEST01/accuracy/mlperf_log_accuracy.json"
    raw = (mlperf_results / "sys1/dlrm-rmc1/Server/TEST01/accuracy/mlperf_log_accuracy.json").read_bytes()
    assert full.read_bytes() == raw
    expected = raw if len(raw) <= 8192 else raw[:4096] + b"\n\n...\n\n" + raw[-4096:]
    assert (test01 / "mlperf_log_accuracy.json").read_bytes() == expected
    auc_line, blank, digest = (test01 / "accuracy.txt").read_text().splitlines()
    assert auc_line.startswith("AUC=") and blank == "" and digest == f"hash={hashlib.sha256(raw).hexdigest()}"


def test_check_verifies_a_submission_against_its_full_accuracy_logs(mlperf_results: Path, system_json: Path, tmp_path: Path) -> None:
    """Beside the submission, <out>-accuracy-logs/ holds the full logs: check verifies hash, head
    and tail, and recomputes the AUC from the (prediction, label) pairs."""
    sub = tmp_path / "sub"
    result = CliRunner().invoke(cli, ["submit", "--results", str(mlperf_results), "--org", "Acme", "--out", str(sub),
                                      "--system-json", str(system_json)])  # fmt: skip
    assert result.exit_code == 0, result.output
    acc = sub / BENCH.format(kind="results") / "accuracy"
    full = tmp_path / "sub-accuracy-logs" / BENCH.format(kind="results") / "accuracy/mlperf_log_accuracy.json"

    def rules() -> set[str]:
        return {f.rule for f in check([sub], profile="smoke").findings}

    assert rules() == set()  # recomputed, not taken from accuracy.txt
    text = (acc / "accuracy.txt").read_text()
    (acc / "accuracy.txt").write_text("AUC=81.000%" + text[text.index(","):])
    assert "accuracy.mismatch" in rules()
    (acc / "accuracy.txt").write_text(text)
    truncated = (acc / "mlperf_log_accuracy.json").read_bytes()
    (acc / "mlperf_log_accuracy.json").write_bytes(truncated[:100] + (b"1" if truncated[100:101] != b"1" else b"2") + truncated[101:])
    assert "accuracy.backup" in rules()
    (acc / "mlperf_log_accuracy.json").write_bytes(truncated)
    full.write_bytes(full.read_bytes().replace(b"]", b" ]"))
    assert "accuracy.hash" in rules()
    # MLPerf: "not hash value for mlperf_log_accuracy.json", also for a log left whole.
    shutil.copyfile(full, acc / "mlperf_log_accuracy.json")
    (acc / "accuracy.txt").write_text(text.split("\nhash=")[0] + "\n")
    assert "accuracy.hash" in rules()


def test_check_rejects_a_datacenter_benchmark_on_an_edge_system_and_orphan_systems(
    mlperf_results: Path, system_json: Path, tmp_path: Path
) -> None:
    """MLPerf's checker: 'has an invalid model ... system_type=edge' for dlrm-v2, and 'systems has
    the following files with no results'."""
    sub = tmp_path / "sub"
    result = CliRunner().invoke(cli, ["submit", "--results", str(mlperf_results), "--org", "Acme", "--out", str(sub),
                                      "--system-json", str(system_json)])  # fmt: skip
    assert result.exit_code == 0, result.output
    systems = sub / "closed/Acme/systems"
    data = json.loads((systems / "sys1.json").read_text())
    (systems / "sys1.json").write_text(json.dumps({**data, "system_type": "edge", "is_network": "true"}))
    shutil.copyfile(systems / "sys1.json", systems / "sys2.json")
    messages = [f.message for f in check([sub], profile="smoke").errors]
    assert "systems/sys1.json: dlrm-rmc1-99 needs a system_type in ['datacenter', 'datacenter,edge'] (got 'edge')" in messages
    assert "systems/sys2.json has no results/sys2" in messages
    assert "systems/sys1.json: 'is_network' is true, which the closed division does not allow" in messages


def test_weight_transformations_say_what_the_fused_kernels_did() -> None:
    from suite.submit import weight_transformations

    assert weight_transformations("fp32", {}) == "none"
    assert weight_transformations("bf16", {"fused": None}) == "fp32 weights cast to bf16 at load"
    fp8 = {"fused": {"rows": "int8", "dense": "fp8", "calibration": {"items": 4096, "margin": 2.0, "amax": {}}}}
    text = weight_transformations("fp8", fp8)
    assert text.startswith("fp32 weights converted at load: embedding rows to int8 with a per-row fp32 scale and bias; ")
    assert "fp8 e4m3 with one scale per output channel" in text and "calibrated on 4096 generated items" in text
    assert weight_transformations("bf16", {"fused": {"rows": "bf16", "dense": "bf16"}}).endswith("; dense layers cast to bf16")


def _gpu_scenario(backend: BackendRecord) -> ScenarioRuns:
    from suite.record import AccuracyRecord, EnvironmentRecord, ModelRecord, PerformanceRecord, RunConfigRecord, SettingsRecord
    from suite.submit import ScenarioRuns

    config = RunConfigRecord(model=ModelRecord(name="dlrm-v2", scale="tiny"), backend="torch-cuda", scenario="Offline", mode="performance")
    return ScenarioRuns(
        system="gpu-box", model_dir="dlrm-v2", scenario="Offline", source=Path("/nonexistent"), benchmark="dlrm-v2-99",
        rules="mlperf-v5.1", profile="official", config=config, settings=SettingsRecord(), backend=backend,
        environment=EnvironmentRecord(hostname="not-this-host", cpu="AMD EPYC 9654"), accuracy=AccuracyRecord(),
        performance=PerformanceRecord(),
    )  # fmt: skip


def test_systems_json_takes_the_accelerator_from_the_backends_structured_record(tmp_path: Path) -> None:
    """The accelerator's name and memory come from the record's fields, never parsed from ``device``
    (a display string: torch-cuda writes ``<name> (<N> GiB)``, deeprecsched ``cpu+<name> (<N> GiB)``)."""
    from suite.errors import ConfigError
    from suite.record import BackendRecord
    from suite.submit import SubmitRequest, _system_json

    gpu_json = tmp_path / "gpu.json"
    gpu_json.write_text(json.dumps({**SYSTEM, **dict.fromkeys((
        "number_of_nodes", "host_processors_per_node", "host_processor_core_count", "accelerators_per_node",
        "accelerator_host_interconnect", "accelerator_memory_configuration", "accelerator_interconnect", "operating_system",
        "other_software_stack"), "1")}))  # fmt: skip
    request = SubmitRequest(results=tmp_path, org="Acme", division="closed", out=tmp_path / "sub", system_json=gpu_json)
    from suite.backends.base import BackendInfo

    # What a backend's info() writes into result.json, read back as the record.
    info = BackendInfo(name="torch-cuda", version="2.11", device="whatever the backend shows", precision="fp32",
                       accelerator_model="NVIDIA H200", accelerator_memory_bytes=140 * 2**30, extra={"lanes": 2})  # fmt: skip
    structured = BackendRecord.from_dict(info.to_dict())
    assert structured.accelerator_model == "NVIDIA H200" and structured.extra == {"lanes": 2}
    data = _system_json(request, [_gpu_scenario(structured)])
    assert (data["accelerator_model_name"], data["accelerator_memory_capacity"]) == ("NVIDIA H200", "140 GB")
    assert data["framework"] == "PyTorch 2.11"
    # A display string alone names no accelerator: the required field stays empty and submit says so.
    shown_only = BackendRecord(name="torch-cuda", version="2.11", device="NVIDIA H200 (140 GiB)", precision="fp32")
    with pytest.raises(ConfigError, match=r"required field\(s\) empty: .*'accelerator_model_name'"):
        _system_json(request, [_gpu_scenario(shown_only)])


@pytest.fixture
def built(mlperf_results: Path, system_json: Path, tmp_path: Path) -> Path:
    """A submission `suite submit` built from the smoke runs (checked under the smoke profile)."""
    sub = tmp_path / "sub"
    result = CliRunner().invoke(cli, ["submit", "--results", str(mlperf_results), "--org", "Acme", "--out", str(sub),
                                      "--system-json", str(system_json)])  # fmt: skip
    assert result.exit_code == 0, result.output
    return sub


def _set_detail(path: Path, key: str, value: object) -> None:
    lines = []
    for line in path.read_text().splitlines():
        if line.startswith(":::MLLOG ") and json.loads(line[9:])["key"] == key:
            line = ":::MLLOG " + json.dumps({**json.loads(line[9:]), "value": value})
        lines.append(line)
    path.write_text("\n".join(lines) + "\n")


def _errors(sub: Path) -> set[tuple[str, str]]:
    return {(f.rule, f.message) for f in check([sub], profile="smoke").errors}


def test_check_reports_mlperfs_root_measurement_and_compliance_run_rules(built: Path) -> None:
    """MLPerf's checker: only .md/.pdf beside the divisions, no unknown division, no file in a
    division; user.conf and README.md not empty; the measurements JSON named after the system;
    TEST01's performance run held to the scenario's settings. A case-different submitter and
    'edge,datacenter' are what MLPerf accepts."""
    (built / "README.md").write_text("about this submission")
    (built / "notes.txt").write_text("stray")
    (built / "Closed").mkdir()
    (built / "Closed/x.md").write_text("x")
    (built / "closed/stray.txt").write_text("stray")
    measured = built / BENCH.format(kind="measurements")
    (measured / "README.md").write_text("")
    (measured / "sys1.json").rename(measured / "other.json")
    system = built / "closed/Acme/systems/sys1.json"
    system.write_text(json.dumps({**json.loads(system.read_text()), "submitter": "acme", "system_type": "edge,datacenter"}))
    _set_detail(built / BENCH.format(kind="compliance") / "TEST01/performance/run_1/mlperf_log_detail.txt", "effective_min_duration_ms", 5)
    found = _errors(built)
    assert {(r, m) for r, m in found if r != "settings.min-duration"} == {
        ("submission.layout", "files outside the division folder: ['notes.txt']"),
        ("submission.layout", "'Closed' is not a division (have ['closed', 'open', 'network'])"),
        ("submission.layout", "files outside the submitter folders: ['stray.txt']"),
        ("submission.measurements", "README.md is empty"),
        ("submission.measurements", "no sys1.json measurements file"),
    }
    [(_, message)] = [(r, m) for r, m in found if r == "settings.min-duration"]
    assert message.startswith("effective_min_duration_ms is 5, the rule requires at least")
    assert any("TEST01" in f.path for f in check([built], profile="smoke").errors if f.rule == "settings.min-duration")


def test_check_reports_the_network_division_and_power_rules(built: Path) -> None:
    """A network-division system says is_network, has MLPerf's network fields and names its SUT
    'Network SUT' in every performance log; a power measurement holds power/, ranging/, spl.txt
    and the analyzer table and power settings."""
    (built / "closed").rename(built / "network")
    system = built / "network/Acme/systems/sys1.json"
    system.write_text(json.dumps({**json.loads(system.read_text()), "division": "network", "is_network": "true"}))
    scen = built / BENCH.format(kind="results").replace("closed/", "network/", 1)
    perf = scen / "performance"
    (perf / "power").mkdir()
    (perf / "power/server.json").write_text("{}")
    shutil.copytree(perf / "run_1", perf / "ranging")
    (perf / "run_1/spl.txt").write_text("Time,...")
    found = _errors(built)
    network_fields = [
        "is_network", "network_type", "network_media", "network_rate", "nic_loadgen", "number_nic_loadgen",
        "net_software_stack_loadgen", "network_protocol", "number_connections", "nic_sut", "number_nic_sut",
        "net_software_stack_sut", "network_topology",
    ]  # fmt: skip
    missing = ", ".join(repr(k) for k in network_fields if k != "is_network")
    assert ("submission.system", f"systems/sys1.json: network field(s) missing: {missing}") in found
    sut = [f for f in check([built], profile="smoke").errors if f.rule == "submission.network"]
    assert [f.message for f in sut] == ["sut_name 'PyFastSUT' lacks 'Network SUT' (a system over the network)"] * 2
    assert sorted(Path(f.path).parts[-4] for f in sut) == ["Server", "TEST01"]  # the run and its TEST01 run
    power = sorted(m for r, m in found if r == "submission.power")
    assert power == sorted([
        "power/ lacks ['client.json', 'client.log', 'ptd_logs.txt', 'server.log']",
        "ranging/ lacks ['spl.txt']",
        "no analyzer_table.* file beside the measurements",
        "no power_settings.* file beside the measurements",
    ])  # fmt: skip
    # A network system in the closed division, and a local one in the network division, are refused.
    system.write_text(json.dumps({**json.loads(system.read_text()), "is_network": "false"}))
    assert ("submission.system", "systems/sys1.json: 'is_network' is not true, which the network division requires") in _errors(built)


def test_check_refuses_a_scenario_the_closed_division_does_not_allow(built: Path) -> None:
    """MLPerf's checker: '... ignoring scenario SingleStream (neither required nor optional)' in
    the closed division; a folder named for another scenario than its log's is refused too (MLPerf
    would infer a result from it; we judge a run by its own scenario)."""
    for kind in ("results", "measurements", "compliance"):
        src = built / BENCH.format(kind=kind)
        shutil.copytree(src, src.with_name("SingleStream"))
    found = _errors(built)
    assert ("structure.extra-scenario", "SingleStream is neither required nor optional for dlrm-rmc1-99 in the closed division "
            "(have ['Server'])") in found  # fmt: skip
    assert ("settings.scenario", "effective_scenario is 'Server', want 'SingleStream'") in found


def test_check_reports_mlperfs_systems_code_and_file_rules(built: Path) -> None:
    """The rest of MLPerf's tree rules, one tamper each: a symlink, a file over 50 MB (sparse), no
    code/<benchmark>, no calibration.md, a systems JSON whose status, submitter and division are
    not the tree's, a measurements JSON lacking a field, an extra file in TEST01's folder."""
    org = built / "closed/Acme"
    (org / "documentation/big.bin").write_bytes(b"")
    os.truncate(org / "documentation/big.bin", 51 * 1024 * 1024)
    (org / "documentation/calibration.md").unlink()
    (org / "documentation/link.md").symlink_to(org / "documentation/big.bin")
    shutil.rmtree(org / "code/dlrm-rmc1-99")
    (org / "code/other.md").write_text("x")
    system = org / "systems/sys1.json"
    system.write_text(json.dumps({**json.loads(system.read_text()), "status": "sold", "submitter": "Other", "division": "open"}))
    measured = built / BENCH.format(kind="measurements") / "sys1.json"
    measured.write_text(json.dumps({k: v for k, v in json.loads(measured.read_text()).items() if k != "retraining"}))
    (built / BENCH.format(kind="compliance") / "TEST01/notes.txt").write_text("extra")
    found = _errors(built)
    assert {
        ("submission.size", "big.bin is over 50 MB"),
        ("submission.symlink", "link.md is a symlink (a submission holds real files only)"),
        ("submission.layout", "code/dlrm-rmc1-99 is missing"),
        ("submission.layout", "documentation/calibration.md is missing (required in the closed division)"),
        ("submission.system", "systems/sys1.json: 'status' must be one of ['available', 'preview', 'rdi'] (got 'sold')"),
        ("submission.system", "systems/sys1.json: 'division' is 'open', the tree's is 'closed'"),
        ("submission.system", "systems/sys1.json: 'submitter' is 'Other', the tree's is 'Acme'"),
        ("submission.measurements", "sys1.json: field(s) missing or empty: 'retraining'"),
        ("submission.file-set", "files MLPerf's checker does not allow here: ['notes.txt']"),
    } <= found


def test_check_reports_a_missing_systems_json_and_performance_run(built: Path) -> None:
    """MLPerf's checker: 'no system_desc for ...' and '.../performance/run_1 is missing'."""
    (built / "closed/Acme/systems/sys1.json").unlink()
    shutil.rmtree(built / BENCH.format(kind="results") / "performance/run_1")
    found = _errors(built)
    assert ("submission.system", "systems/sys1.json is missing") in found
    assert ("structure.missing-run", "the performance run of Server is missing") in found
    assert ("submission.file-set", "run_1/ is missing") in found


def test_check_refuses_a_benchmark_mlperf_does_not_know(built: Path) -> None:
    """MLPerf's checker, closed division: '... has an invalid model dlrm-v9-99 for closed/network division'."""
    org = built / "closed/Acme"
    for kind in ("results", "measurements", "compliance", "code"):
        bench = org / kind / "sys1/dlrm-rmc1-99" if kind != "code" else org / "code/dlrm-rmc1-99"
        bench.rename(bench.with_name("dlrm-v9-99"))
    assert "rules.unknown" in {rule for rule, _ in _errors(built)}


# MLPerf's checker rules that `suite check` gained with docs/mlperf-checker-map.md: each test breaks
# exactly one rule of a tree that passes, and asserts the exact finding.

POWER_TIME = "%m-%d-%Y %H:%M:%S.%f"


def _power_tree(built: Path) -> Path:
    """``built`` with a power measurement MLPerf's checker accepts (its Power WG checker aside):
    performance/{power,ranging,run_1}, spl.txt samples inside the power window LoadGen logged
    (power_begin, power_end), the analyzer table and power settings beside the measurements.
    Returns the run_1 folder."""
    from datetime import datetime

    perf = built / BENCH.format(kind="results") / "performance"
    run_1 = perf / "run_1"
    detail = read_detail(run_1 / "mlperf_log_detail.txt")
    begin, end = (datetime.strptime(detail.get(k), POWER_TIME) for k in ("power_begin", "power_end"))
    when = [begin + (end - begin) * k / 10 for k in range(1, 10)]
    (run_1 / "spl.txt").write_text("".join(f"Time,{t.strftime(POWER_TIME)[:-3]},Watts,251.5,Volts,230.1,Amps,1.1,PF,0.99,Mark,x\n" for t in when))
    shutil.copytree(run_1, perf / "ranging")
    (perf / "power").mkdir()
    for name in ("client.json", "client.log", "ptd_logs.txt", "server.json", "server.log", "results.json"):
        (perf / "power" / name).write_text("x")  # results.json: a file MLPerf's file-set check tolerates
    measured = built / BENCH.format(kind="measurements")
    (measured / "analyzer_table.md").write_text("| analyzer | Yokogawa WT310E |")
    (measured / "power_settings.md").write_text("performance governor")
    return run_1


def test_a_power_measurement_mlperf_accepts_passes(built: Path) -> None:
    _power_tree(built)
    assert _errors(built) == set()


def test_check_needs_power_samples_inside_the_runs_power_window(built: Path) -> None:
    """MLPerf's get_power_metric: '... has no power samples falling in power range'."""
    run_1 = _power_tree(built)
    (run_1 / "spl.txt").write_text("Time,01-01-2020 00:00:00.000,Watts,251.5\n" + (run_1 / "spl.txt").read_text().replace(",Watts,251.5,", ",Watts,0.0,"))
    [(rule, message)] = _errors(built)
    assert rule == "submission.power-samples" and message.startswith("spl.txt has no positive power sample between power_begin ")


def test_check_needs_a_power_window_in_the_detail_log(built: Path) -> None:
    run_1 = _power_tree(built)
    _set_detail(run_1 / "mlperf_log_detail.txt", "power_end", None)
    [(rule, message)] = _errors(built)
    assert rule == "submission.power-samples" and message.startswith("the detail log's power_begin/power_end are not timestamps")
    assert message.endswith(", None))")


def test_check_needs_spl_txt_in_the_power_run(built: Path) -> None:
    """MLPerf's check_power_dir: the testing run (run_1) holds REQUIRED_PERF_POWER_FILES."""
    (_power_tree(built) / "spl.txt").unlink()
    assert _errors(built) == {("submission.power", "run_1/ lacks ['spl.txt']")}


def test_check_refuses_an_empty_analyzer_table(built: Path) -> None:
    """MLPerf's check_measurement_dir: '... is having empty analyzer_table.*'."""
    _power_tree(built)
    (built / BENCH.format(kind="measurements") / "analyzer_table.md").write_text("")
    assert _errors(built) == {("submission.power", "analyzer_table.md is empty")}


def test_check_holds_test01s_performance_run_to_loadgens_verdict(built: Path) -> None:
    """MLPerf's check_performance_dir on TEST01/performance/run_1: no LoadGen error in its log."""
    detail = built / BENCH.format(kind="compliance") / "TEST01/performance/run_1/mlperf_log_detail.txt"
    with open(detail, "a") as handle:
        handle.write(":::MLLOG " + json.dumps({"key": "error_runtime", "value": "Ending early", "metadata": {"is_error": True}}) + "\n")
    assert _errors(built) == {("loadgen.error", "LoadGen logged an error: error_runtime: Ending early")}


def test_test01s_fallback_files_go_with_its_accuracy_verdict(built: Path) -> None:
    """MLPerf's check_compliance_acc_dir: a passing verify_accuracy.txt allows only the accuracy log
    and accuracy.txt; a failing one also needs baseline_accuracy.txt and compliance_accuracy.txt."""
    test01 = built / BENCH.format(kind="compliance") / "TEST01"
    (test01 / "accuracy/baseline_accuracy.txt").write_text("AUC=50.000%\n")
    assert _errors(built) == {("submission.file-set", "files MLPerf's checker does not allow here: ['accuracy/baseline_accuracy.txt']")}
    (test01 / "accuracy/baseline_accuracy.txt").unlink()
    verify = test01 / "verify_accuracy.txt"
    verify.write_text(verify.read_text().replace("TEST PASS", "TEST FAIL"))
    found = _errors(built)
    assert ("submission.file-set", "missing ['accuracy/baseline_accuracy.txt', 'accuracy/compliance_accuracy.txt']") in found
    assert {rule for rule, _ in found} == {"submission.file-set", "compliance.failed"}


RES = BENCH.format(kind="results")
TEST01 = BENCH.format(kind="compliance") + "/TEST01"


def _append_error(path: Path) -> None:
    """A LoadGen error in a run's detail log, and its count in the summary, as LoadGen writes both."""
    with open(path, "a") as handle:
        handle.write(":::MLLOG " + json.dumps({"key": "error_runtime", "value": "Ending early", "metadata": {"is_error": True}}) + "\n")
    summary = path.with_name("mlperf_log_summary.txt")
    summary.write_text(summary.read_text().replace("No errors encountered during test.", "1 ERROR encountered. See detailed log."))


def _doctor(key: str, label: str, value: object) -> Callable[[Path], None]:
    """A setting changed in both logs of the performance run, as a doctored user.conf shows it."""

    def tamper(sub: Path) -> None:
        run = sub / RES / "performance/run_1"
        _set_detail(run / "mlperf_log_detail.txt", key, value)
        summary = run / "mlperf_log_summary.txt"
        lines = [f"{label} : {value}" if line.split(":")[0].strip() == label else line for line in summary.read_text().splitlines()]
        summary.write_text("\n".join(lines) + "\n")

    return tamper


def _edit_json(path: Path, **changes: object) -> None:
    data = {**json.loads(path.read_text()), **changes}
    path.write_text(json.dumps({k: v for k, v in data.items() if v is not None}))


def _untruncate(sub: Path) -> None:
    full = sub.parent / "sub-accuracy-logs" / RES / "accuracy/mlperf_log_accuracy.json"
    shutil.copyfile(full, sub / RES / "accuracy/mlperf_log_accuracy.json")


#: One MLPerf checker rule each, broken alone in a tree `suite submit` built (which passes), and the
#: exact rule ids `suite check` answers with (docs/mlperf-checker-map.md names each case by its id).
#: Where one break is two of MLPerf's checks (a missing file is also a file-set mismatch), both ids.
ALONE: dict[str, tuple[Callable[[Path], None], set[str]]] = {
    "perf-invalid": (_doctor("result_validity", "Result is", "INVALID"), {"loadgen.invalid", "compliance.failed"}),
    "perf-error": (lambda s: _append_error(s / RES / "performance/run_1/mlperf_log_detail.txt"), {"loadgen.error"}),
    "perf-sample-count": (_doctor("effective_performance_sample_count", "performance_sample_count", 1),
                          {"settings.performance-sample-count"}),
    "qsl-seed": (_doctor("effective_qsl_rng_seed", "qsl_rng_seed", 1), {"settings.seed"}),
    "sample-index-seed": (_doctor("effective_sample_index_rng_seed", "sample_index_rng_seed", 1),
                          {"settings.seed"}),
    "schedule-seed": (_doctor("effective_schedule_rng_seed", "schedule_rng_seed", 1),
                      {"settings.seed"}),
    "early-stopping": (lambda s: _set_detail(s / RES / "performance/run_1/mlperf_log_detail.txt", "early_stopping_met", False),
                       {"loadgen.early-stopping"}),
    "target-latency": (_doctor("effective_target_latency_ns", "target_latency (ns)", 61_000_000),
                       {"settings.target-latency", "compliance.failed"}),
    "min-duration": (_doctor("effective_min_duration_ms", "min_duration (ms)", 5),
                     {"settings.min-duration"}),
    "no-accuracy-txt": (lambda s: (s / RES / "accuracy/accuracy.txt").unlink(), {"structure.missing-file", "submission.file-set"}),
    "accuracy-extra-file": (lambda s: (s / RES / "accuracy/notes.txt").write_text("x"), {"submission.file-set"}),
    "no-hash": (lambda s: (s / RES / "accuracy/accuracy.txt").write_text((s / RES / "accuracy/accuracy.txt").read_text().split("\nhash=")[0] + "\n"),
                {"accuracy.truncated"}),
    "no-accuracy-log": (lambda s: (s / RES / "accuracy/mlperf_log_accuracy.json").unlink(), {"structure.missing-file", "submission.file-set"}),
    "not-truncated": (_untruncate, {"submission.size"}),
    "no-hash-not-truncated": (lambda s: _untruncate(s) or (s / RES / "accuracy/accuracy.txt").write_text(
        (s / RES / "accuracy/accuracy.txt").read_text().split("\nhash=")[0] + "\n"), {"submission.size", "accuracy.hash"}),
    "accuracy-error": (lambda s: _append_error(s / RES / "accuracy/mlperf_log_detail.txt"), {"loadgen.error"}),
    "no-compliance": (lambda s: shutil.rmtree(s / "closed/Acme/compliance"), {"compliance.missing"}),
    "no-verify-performance": (lambda s: (s / TEST01 / "verify_performance.txt").unlink(), {"structure.missing-file", "submission.file-set"}),
    "performance-not-pass": (lambda s: (s / TEST01 / "verify_performance.txt").write_text("TEST FAIL\n"), {"compliance.failed"}),
    "no-test01-run": (lambda s: shutil.rmtree(s / TEST01 / "performance"), {"structure.missing-file", "submission.file-set"}),
    "test01-run-extra-file": (lambda s: (s / TEST01 / "performance/run_1/notes.txt").write_text("x"), {"submission.file-set"}),
    "no-verify-accuracy": (lambda s: (s / TEST01 / "verify_accuracy.txt").unlink(), {"structure.missing-file", "submission.file-set"}),
    "no-test01-accuracy": (lambda s: shutil.rmtree(s / TEST01 / "accuracy"), {"structure.missing-file", "submission.file-set"}),
    "no-measurements": (lambda s: shutil.rmtree(s / "closed/Acme/measurements"), {"submission.measurements"}),
    "system-field-missing": (lambda s: _edit_json(s / "closed/Acme/systems/sys1.json", hw_notes=None), {"submission.system"}),
    "system-type": (lambda s: _edit_json(s / "closed/Acme/systems/sys1.json", system_type="cloud"), {"submission.system"}),
    "closed-over-network": (lambda s: _edit_json(s / "closed/Acme/systems/sys1.json", is_network="true"), {"submission.system", "submission.network"}),
    "dot-name": (lambda s: (s / "closed/Acme/documentation/.notes.md").write_text("x"), {"submission.name"}),
    "pycache": (lambda s: (s / "closed/Acme/code/dlrm-rmc1-99/__pycache__").mkdir() or (s / "closed/Acme/code/dlrm-rmc1-99/__pycache__/x.pyc").write_text("x"),
                {"submission.name"}),
    "orphan-measurements": (lambda s: shutil.copytree(s / "closed/Acme/measurements/sys1", s / "closed/Acme/measurements/sys2"), {"submission.layout"}),
}  # fmt: skip


@pytest.mark.parametrize("case", list(ALONE))
def test_each_mlperf_rule_alone(case: str, built: Path) -> None:
    tamper, rules_found = ALONE[case]
    assert _errors(built) == set()
    tamper(built)
    assert {rule for rule, _ in _errors(built)} == rules_found
