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
    assert {f.rule for f in check([sub]).errors} == {"settings.min-duration", "settings.min-query-count"}
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
