"""``suite submit``: MLPerf's tree and file sets from smoke runs, refusal that leaves nothing behind."""

from __future__ import annotations

import csv as csvlib
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from suite import rules
from suite.check import check
from suite.cli import cli
from suite.results import read_detail
from suite.submit import CSV_COLUMNS

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
            result = runner.invoke(cli, ["run", *args, "--mode", mode])
            assert result.exit_code == 0, result.output
        result = runner.invoke(cli, ["audit", "TEST01", *args])
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
    assert csv[0] == ",".join(CSV_COLUMNS) and len(csv) == 2
    row = next(csvlib.reader(csv[1:]))
    assert len(row) == len(CSV_COLUMNS) and row[:3] == ["Acme", "available", "closed"] and row[6:9] == ["dlrm-rmc1-99", "dlrm-rmc1-99", "Server"]
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
