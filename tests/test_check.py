"""``suite check`` against a corpus of broken results, each made from one real smoke run by one tamper."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import run_valid, smoke_config

from suite.check import RULES, Finding, Severity, check
from suite.cli import cli
from suite.config import Mode, Scenario
from suite.runner import run

SCEN = Path("testsys/dlrm-rmc1/Server")
PERF = SCEN / "performance/run_1"
ACC = SCEN / "accuracy"


@pytest.fixture(scope="module")
def good_tree(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """One real results tree of DLRM-RMC1 (tiny), Server: the accuracy run on torch-cpu (it must
    pass the AUC gate), the performance run on the null backend (it must stay VALID on 2 busy cores)."""
    root = tmp_path_factory.mktemp("good") / "results"
    run(smoke_config(root, backend="torch-cpu", scenario=Scenario.SERVER, mode=Mode.ACCURACY, target_qps=200.0))
    run_valid(smoke_config(root, scenario=Scenario.SERVER, target_qps=1000.0))
    return root


@pytest.fixture
def tree(good_tree: Path, tmp_path: Path) -> Path:
    """A private copy of the good tree to tamper with."""
    return Path(shutil.copytree(good_tree, tmp_path / "results"))


# Tampers ------------------------------------------------------------------------------------


def set_detail(path: Path, key: str, value: object) -> None:
    lines = []
    for line in path.read_text().splitlines():
        if line.startswith(":::MLLOG "):
            entry = json.loads(line[len(":::MLLOG "):])
            if entry["key"] == key:
                entry["value"] = value
                line = ":::MLLOG " + json.dumps(entry)
        lines.append(line)
    path.write_text("\n".join(lines) + "\n")


def set_summary(path: Path, label: str, value: object) -> None:
    lines = [f"{label} : {value}" if line.split(":")[0].strip() == label else line for line in path.read_text().splitlines()]
    path.write_text("\n".join(lines) + "\n")


def doctor(key: str, label: str, value: object) -> Callable[[Path], None]:
    """Change a setting consistently in both logs, as a run with a doctored user.conf would show it."""

    def tamper(root: Path) -> None:
        set_detail(root / PERF / "mlperf_log_detail.txt", f"effective_{key}", value)
        set_summary(root / PERF / "mlperf_log_summary.txt", label, value)

    return tamper


def missing_file(root: Path) -> None:
    (root / PERF / "mlperf_log_summary.txt").unlink()


def invalid_run(root: Path) -> None:
    set_detail(root / PERF / "mlperf_log_detail.txt", "result_validity", "INVALID")
    set_summary(root / PERF / "mlperf_log_summary.txt", "Result is", "INVALID")


def edited_auc(root: Path) -> None:
    path = root / ACC / "accuracy.txt"
    first, rest = path.read_text().split("\n", 1)
    path.write_text("AUC=85.000%," + first.split(",", 1)[1] + "\n" + rest)


def random_scores(root: Path) -> None:
    path = root / ACC / "mlperf_log_accuracy.json"
    entries = json.loads(path.read_text())
    rng = np.random.default_rng(0)
    for entry in entries:
        pairs = np.frombuffer(bytes.fromhex(entry["data"]), np.float32).reshape(-1, 2).copy()  # (prediction, label)
        pairs[:, 0] = rng.random(len(pairs), dtype=np.float32)
        entry["data"] = pairs.tobytes().hex().upper()
    path.write_text(json.dumps(entries))


def summary_disagrees(root: Path) -> None:
    path = root / PERF / "mlperf_log_summary.txt"
    summary = path.read_text()
    line = next(x for x in summary.splitlines() if x.startswith("Completed samples per second"))
    value = float(line.split(":")[1])
    path.write_text(summary.replace(line, f"Completed samples per second    : {2 * value:.2f}"))


def truncate(path: Path) -> None:
    """MLPerf's truncate_accuracy_log.py: the first and last 4 KiB."""
    text = path.read_text()
    path.write_text(text[:4096] + "\n\n...\n\n" + text[-4096:])


def truncated_without_hash(root: Path) -> None:
    truncate(root / ACC / "mlperf_log_accuracy.json")


def ending_early(root: Path) -> None:
    entry = {"key": "error_runtime", "value": "Ending early: Max test duration reached", "time_ms": 1.0, "namespace": "mlperf::logging",
             "event_type": "POINT_IN_TIME", "metadata": {"is_error": True, "is_warning": False, "file": "loadgen.cc", "line_no": 1,
                                                         "pid": 1, "tid": 1}}
    with open(root / PERF / "mlperf_log_detail.txt", "a") as handle:
        handle.write(":::MLLOG " + json.dumps(entry) + "\n")


def dropped_queries(root: Path) -> None:
    path = root / ACC / "mlperf_log_accuracy.json"
    path.write_text(json.dumps(json.loads(path.read_text())[:-5]))


def slow_p95(root: Path) -> None:
    set_detail(root / PERF / "mlperf_log_detail.txt", "result_95.00_percentile_latency_ns", 150_000_000)
    set_summary(root / PERF / "mlperf_log_summary.txt", "95.00 percentile latency (ns)", 150_000_000)


def result_claims_valid(root: Path) -> None:
    invalid_run(root)
    # result.json still says VALID: a hand-made result next to LoadGen's verdict.


def wrong_hash(root: Path) -> None:
    with open(root / ACC / "accuracy.txt", "a") as handle:
        handle.write("hash=" + "0" * 64 + "\n")


def dropped_result(root: Path) -> None:
    """A VALID Server run whose detail log lacks result_completed_samples_per_sec (MLPerf's checker
    cannot read its result: an exception in check_performance_dir, so the run fails)."""
    path = root / PERF / "mlperf_log_detail.txt"
    lines = [x for x in path.read_text().splitlines() if '"key": "result_completed_samples_per_sec"' not in x]
    path.write_text("\n".join(lines) + "\n")


def wrong_scenario_in_config(root: Path) -> None:
    path = root / PERF / "config.json"
    data = json.loads(path.read_text())
    data["config"]["scenario"] = "Offline"
    path.write_text(json.dumps(data))


TAMPERS = [
    (missing_file, "structure.missing-file"),
    (invalid_run, "loadgen.invalid"),
    (doctor("min_duration_ms", "min_duration (ms)", 500), "settings.min-duration"),
    (doctor("target_latency_ns", "target_latency (ns)", 1_000_000_000), "settings.target-latency"),
    (doctor("qsl_rng_seed", "qsl_rng_seed", 1780908523862526354), "settings.seed"),
    (doctor("min_query_count", "min_query_count", 10), "settings.min-query-count"),
    (edited_auc, "accuracy.mismatch"),
    (random_scores, "accuracy.mismatch"),
    (random_scores, "accuracy.gate"),
    (summary_disagrees, "consistency.summary-detail"),
    (truncated_without_hash, "accuracy.truncated"),
    (ending_early, "loadgen.error"),
    (dropped_queries, "accuracy.coverage"),
    (slow_p95, "sla.latency"),
    (result_claims_valid, "consistency.result"),
    (wrong_hash, "accuracy.hash"),
    (wrong_scenario_in_config, "consistency.config"),
    (dropped_result, "loadgen.result"),
    # MLPerf infers an Offline result from a SingleStream log; we judge a run only by its own scenario.
    (doctor("scenario", "Scenario", "SingleStream"), "settings.scenario"),
]


def test_untouched_run_passes(good_tree: Path) -> None:
    report = check([good_tree])
    assert report.findings == []
    assert report.passed and len(report.runs) == 2


@pytest.mark.parametrize(("tamper", "rule"), TAMPERS, ids=[f"{t.__name__}-{r}" for t, r in TAMPERS])
def test_each_tamper_is_caught_with_its_rule(tree: Path, tamper: Callable[[Path], None], rule: str) -> None:
    tamper(tree)
    report = check([tree])
    assert rule in {f.rule for f in report.errors}, report.findings
    assert not report.passed


def test_truncated_log_with_hash_is_accepted_on_accuracy_txt(tree: Path) -> None:
    import hashlib

    log = tree / ACC / "mlperf_log_accuracy.json"
    digest = hashlib.sha256(log.read_bytes()).hexdigest()
    with open(tree / ACC / "accuracy.txt", "a") as handle:
        handle.write(f"hash={digest}\n")
    assert check([tree]).passed  # the intact log matches its hash
    truncate(log)
    report = check([tree])
    assert report.passed
    assert [(f.rule, f.severity) for f in report.findings] == [("accuracy.not-recomputed", Severity.INFO)]


def test_judging_by_a_stricter_profile_fails_a_smoke_run(good_tree: Path) -> None:
    rules = {f.rule for f in check([good_tree / PERF], profile="official").errors}
    assert {"settings.min-duration", "settings.min-query-count"} <= rules


def test_doctored_user_conf_fails_a_real_run(results: Path, data_dir: Path, tmp_path: Path) -> None:
    user_conf = tmp_path / "user.conf"
    user_conf.write_text("*.Offline.min_duration = 200\n")
    result = run(smoke_config(results, user_conf=user_conf, target_qps=2_000_000.0))
    assert result.data["performance"]["validity"] == "VALID"  # LoadGen is content; the rules are not
    report = check([result.path])
    assert [f.rule for f in report.errors] == ["settings.min-duration"]
    assert report.errors[0].message == "effective_min_duration_ms is 200, the rule requires at least 1000"


# Bad input ----------------------------------------------------------------------------------


def test_a_folder_without_runs_is_a_finding(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    report = check([tmp_path])
    assert [f.rule for f in report.findings] == ["structure.not-a-result"]


@pytest.mark.parametrize(
    ("name", "content", "rule"),
    [
        (PERF / "config.json", b"{not json", "structure.unreadable"),
        (PERF / "result.json", b"[1, 2]", "structure.unreadable"),
        (PERF / "mlperf_log_detail.txt", os.urandom(2048), "structure.unreadable"),
        (PERF / "mlperf_log_detail.txt", b"", "structure.empty-file"),
        (PERF / "mlperf_log_summary.txt", b"\x00\x01\x02" * 100, "structure.unreadable"),
        (ACC / "mlperf_log_accuracy.json", os.urandom(2048), "structure.unreadable"),
        (ACC / "accuracy.txt", b"the model did fine\n", "accuracy.report"),
    ],
)
def test_bad_files_are_findings_not_tracebacks(tree: Path, name: Path, content: bytes, rule: str) -> None:
    (tree / name).write_bytes(content)
    report = check([tree])
    assert rule in {f.rule for f in report.errors}


def test_missing_dataset_is_a_finding(tree: Path) -> None:
    path = tree / ACC / "config.json"
    data = json.loads(path.read_text())
    data["dataset"]["path"] = "/nonexistent/dataset"
    path.write_text(json.dumps(data))
    (tree / ACC / "result.json").write_text(json.dumps({**json.loads((tree / ACC / "result.json").read_text()), "config": data["config"]}))
    assert [f.rule for f in check([tree]).errors] == ["accuracy.labels"]


def test_finding_rule_ids_are_documented() -> None:
    with pytest.raises(ValueError, match="'rule' must be one of the documented ids"):
        Finding("made.up", Severity.ERROR, "x", "y")
    assert all(rule.split(".")[0] in {"structure", "record", "rules", "loadgen", "settings", "sla", "accuracy", "consistency", "compliance", "run",
                                      "submission"}
               for rule in RULES)


def test_submission_layout_is_accepted(good_tree: Path, tmp_path: Path) -> None:
    """closed/<Org>/results/<system>/<benchmark>/<Scenario>/..., with only MLPerf's files."""
    scen = tmp_path / "sub/closed/Acme/results/testsys/dlrm-rmc1/Server"
    shutil.copytree(good_tree / SCEN, scen)
    import hashlib

    digest = hashlib.sha256((scen / "accuracy/mlperf_log_accuracy.json").read_bytes()).hexdigest()
    with open(scen / "accuracy/accuracy.txt", "a") as handle:
        handle.write(f"\nhash={digest}\n")  # as truncate_accuracy_log.py leaves it; MLPerf requires one
    report = check([tmp_path / "sub"])
    # The runs pass; the tree alone is not a whole submission (systems/, measurements/, code/...:
    # MLPerf's tree rules, tested in test_submit.py).
    assert {f.rule.split(".")[0] for f in report.errors} == {"submission"} and len(report.runs) == 2
    for name in ("config.json", "result.json"):
        (scen / "performance/run_1" / name).unlink()
    # Without a config.json a run is judged under the official profile, unless told otherwise.
    assert "settings.min-duration" in {f.rule for f in check([tmp_path / "sub"]).errors}
    report = check([tmp_path / "sub"], profile="smoke")
    assert {f.rule.split(".")[0] for f in report.errors} == {"submission"}, report.findings


# The CLI ------------------------------------------------------------------------------------


def test_cli_exit_codes_and_table(good_tree: Path, tree: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["check", str(good_tree)])
    assert result.exit_code == 0
    assert result.stdout == "PASS: 2 run folder(s) checked, 0 error(s), 0 other finding(s)\n"
    ending_early(tree)
    result = runner.invoke(cli, ["check", str(tree)])
    assert result.exit_code == 1
    header, *rows, verdict = result.stdout.splitlines()
    assert header.split() == ["severity", "rule", "path", "message"]
    assert rows[0].split()[:3] == ["error", "loadgen.error", str(tree / PERF / "mlperf_log_detail.txt")]
    assert rows[0].endswith("LoadGen logged an error: error_runtime: Ending early: Max test duration reached")
    assert verdict.startswith("FAIL: 2 run folder(s) checked, ")


def test_cli_json(tree: Path) -> None:
    edited_auc(tree)
    result = CliRunner().invoke(cli, ["check", "--json", str(tree)])
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["passed"] is False and data["errors"] == 1
    assert data["findings"] == [
        {"rule": "accuracy.mismatch", "severity": "error", "path": str(tree / ACC / "accuracy.txt"),
         "message": data["findings"][0]["message"]}
    ]
    assert data["findings"][0]["message"].startswith("accuracy.txt says AUC=85.000%, the accuracy log gives ")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["/nonexistent/results"], "Error: 'path' '/nonexistent/results' does not exist"),
        (["--rules", "mlperf-v9", "."], "Error: 'rules' must be one of ['deeprecsys', 'mlperf-v5.1', 'mlperf-v6.0'] (got 'mlperf-v9')"),
        (["--rules", "deeprecsys", "--profile", "quick", "."], "Error: 'profile' must be one of ['official', 'short', 'smoke'] (got 'quick')"),
    ],
)
def test_cli_bad_input_is_one_line(args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, ["check", *args])
    assert result.exit_code == 2
    assert result.stderr == message + "\n"


def test_cli_not_a_result_exits_1(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["check", str(tmp_path)])
    assert result.exit_code == 1
    assert "structure.not-a-result" in result.stdout


def test_the_queries_are_rebuilt_as_the_records_schema_version_laid_them(results: Path, data_dir: Path) -> None:
    """A run with MLPerf's quantile sizes (stratified since schema version 2) checks clean; the same
    run relabelled version 1 is rebuilt with the independent draws of before, whose queries are
    not the ones its accuracy log answered."""
    result = run(smoke_config(results, backend="torch-cpu", mode=Mode.ACCURACY, query_size="mlperf"))
    assert check([result.path]).passed
    for name in ("config.json", "result.json"):
        data = json.loads((result.path / name).read_text())
        assert data["schema_version"] == 2
        data["schema_version"] = 1
        (result.path / name).write_text(json.dumps(data))
    report = check([result.path])
    assert not report.passed
    assert [f.rule for f in report.errors] == ["accuracy.log"]
    assert report.errors[0].message.startswith("the accuracy log does not fit the dataset")
