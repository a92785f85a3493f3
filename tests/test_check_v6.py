"""``suite check`` of dlrm-v3 accuracy runs under mlperf-v6.0: one real run, tampered one way each."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import smoke_config

from suite import mlperf_v6
from suite.audit import run_audit
from suite.check import RULES, check
from suite.config import Mode, Scenario
from suite.models import ModelSpec
from suite.runner import run

ACC = Path("testsys/dlrm-v3/Offline/accuracy")


@pytest.fixture(scope="module")
def good_v6(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """A real dlrm-v3 (tiny) accuracy run on torch-cpu, judged by mlperf-v6.0 (the model's rule set)."""
    root = tmp_path_factory.mktemp("v6") / "results"
    base = smoke_config(root, model=ModelSpec(name="dlrm-v3", scale="tiny"), backend="torch-cpu", scenario=Scenario.OFFLINE)
    result = run(dataclasses.replace(base, mode=Mode.ACCURACY))
    assert result.data["settings"]["rules"] == "mlperf-v6.0"
    run(base)
    audited = run_audit("TEST08", base)
    assert audited.passed
    return root


@pytest.fixture
def v6_tree(good_v6: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(good_v6, tmp_path / "results"))


def accuracy_rules(root: Path) -> list[str]:
    return sorted(f.rule for f in check([root / ACC]).findings if f.rule.startswith("accuracy."))


def test_a_real_run_writes_the_checkers_lines_and_passes(good_v6: Path) -> None:
    text = (good_v6 / ACC / "accuracy.txt").read_text()
    assert set(mlperf_v6.parse_report(text)) == set(mlperf_v6.METRICS) and "result=PASS" in text
    data = json.loads((good_v6 / ACC / "result.json").read_text())
    assert data["accuracy"]["rules"] == "mlperf-v6.0" and data["valid"]
    assert accuracy_rules(good_v6) == []
    assert {f"accuracy.v6-{m}" for m in mlperf_v6.METRICS} | {"accuracy.v6-report", "accuracy.v6-mismatch", "compliance.test08"} <= set(RULES)


def _edit_line(path: Path, key: str, new: str | None) -> None:
    lines = [(new if new is not None else None) if line.startswith(f"metric/{key}/") else line for line in path.read_text().splitlines()]
    path.write_text("\n".join(x for x in lines if x is not None) + "\n")


def test_an_edited_metric_line_is_a_mismatch(v6_tree: Path) -> None:
    _edit_line(v6_tree / ACC / "accuracy.txt", "lifetime_gauc", "metric/lifetime_gauc/rating: 0.9990000000")
    assert accuracy_rules(v6_tree) == ["accuracy.v6-mismatch"]


def test_a_missing_metric_line_is_reported(v6_tree: Path) -> None:
    _edit_line(v6_tree / ACC / "accuracy.txt", "lifetime_ne", None)
    assert accuracy_rules(v6_tree) == ["accuracy.v6-report"]


def test_worse_predictions_fail_the_gate_even_with_a_consistent_report(v6_tree: Path) -> None:
    """Predictions flattened towards 0.5, with accuracy.txt rewritten from them: NE and group AUC fail."""
    from suite.datasets.store import Dataset
    from suite.results import parse_accuracy_log

    log = v6_tree / ACC / "mlperf_log_accuracy.json"
    entries = json.loads(log.read_text())
    rng = np.random.default_rng(0)
    for entry in entries:
        # MLPerf's layout: ts_idx, query_idx, predictions, labels, weights, candidate count
        data = np.frombuffer(bytes.fromhex(entry["data"]), np.float32).copy()
        n = int(data[-1])
        preds = data[2 : 2 + n]
        data[2 : 2 + n] = 0.5 + 0.05 * (preds - 0.5) + rng.normal(0, 0.05, n)
        entry["data"] = data.astype(np.float32).tobytes().hex()
    log.write_text(json.dumps(entries))
    config = json.loads((v6_tree / ACC / "config.json").read_text())
    dataset = Dataset.load(Path(config["dataset"]["path"]), in_memory=False)
    labels = np.asarray(dataset.labels)
    offsets, flat = mlperf_v6.candidate_pool(np.arange(len(labels) + 1), labels)
    reference = mlperf_v6.reference_for(dataset.meta)
    report = mlperf_v6.score(parse_accuracy_log(log.read_text()), offsets, flat, reference, 0.999)
    (v6_tree / ACC / "accuracy.txt").write_text(report.text())
    rules = accuracy_rules(v6_tree)
    assert "accuracy.v6-mismatch" not in rules
    assert {"accuracy.v6-ne", "accuracy.v6-gauc"} <= set(rules)


TEST08 = Path("testsys/dlrm-v3/Offline/TEST08")


def test_test08_folder_is_as_mlperf_writes_it_and_checks_clean(good_v6: Path) -> None:
    lines = (good_v6 / TEST08 / "verify_accuracy.txt").read_text().splitlines()
    assert lines[-2:] == ["TEST PASS", "TEST08 verification complete"] and "num_unmatched = 0" in lines
    assert (good_v6 / TEST08 / "accuracy/mlperf_log_accuracy.json").is_file()
    assert "*.*.accuracy_log_sampling_target = 4096" in (good_v6 / TEST08 / "audit.config").read_text()
    findings = check([good_v6 / "testsys/dlrm-v3/Offline"]).findings
    assert [f.rule for f in findings if f.rule.startswith("compliance")] == []


def test_test08_re_verifies_a_hand_written_pass(v6_tree: Path) -> None:
    """Sampled predictions changed after the audit: verify_accuracy.txt still says PASS, the logs do not."""
    log = v6_tree / TEST08 / "accuracy/mlperf_log_accuracy.json"
    entries = json.loads(log.read_text())
    for entry in entries:
        data = np.frombuffer(bytes.fromhex(entry["data"]), np.float32).copy()  # ts_idx, query_idx, predictions
        data[2:] = 1.0 - data[2:]
        entry["data"] = data.tobytes().hex()
    log.write_text(json.dumps(entries))
    findings = check([v6_tree / "testsys/dlrm-v3/Offline"]).findings
    assert [f.rule for f in findings if f.rule.startswith("compliance")] == ["compliance.test08"]
    (v6_tree / TEST08 / "verify_accuracy.txt").write_text("TEST FAIL\n")
    findings = check([v6_tree / "testsys/dlrm-v3/Offline"]).findings
    assert [f.rule for f in findings if f.rule.startswith("compliance")] == ["compliance.failed"]


def test_test08_fails_when_two_sampled_requests_swap_their_keys(v6_tree: Path) -> None:
    """The audit's responses carry (ts_idx, query_idx) as MLPerf's do, and TEST08 matches by them: two
    sampled answers with their keys swapped are judged against each other's labels and fail."""
    log = v6_tree / TEST08 / "accuracy/mlperf_log_accuracy.json"
    entries = json.loads(log.read_text())
    data = [np.frombuffer(bytes.fromhex(e["data"]), np.float32).copy() for e in entries]
    assert len(data) >= 2 and all(len(d) >= 3 for d in data)
    keys = [(int(d[0]), int(d[1])) for d in data]  # a request answered more than once keeps its key
    assert len(set(keys)) >= 2
    first = 0
    second = next(i for i in range(1, len(data)) if len(data[i]) == len(data[0]) and keys[i] != keys[0])
    data[first][:2], data[second][:2] = data[second][:2].copy(), data[first][:2].copy()
    for entry, d in zip(entries, data, strict=True):
        entry["data"] = d.tobytes().hex()
    log.write_text(json.dumps(entries))
    findings = check([v6_tree / "testsys/dlrm-v3/Offline"]).findings
    assert [f.rule for f in findings if f.rule.startswith("compliance")] == ["compliance.test08"]


def test_submit_builds_the_v6_tree_the_checker_expects(good_v6: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One Offline result (the copied table requires Offline only): audits and measurements.json in
    the scenario's results folder, src/ for code, no compliance/ or measurements/ folders."""
    from click.testing import CliRunner

    from suite.cli import cli
    from suite.rules import rules_dir

    table_dir = Path(shutil.copytree(rules_dir(), tmp_path / "rules"))
    table = table_dir / "mlperf-v6.0.toml"
    table.write_text(table.read_text().replace('required_scenarios = ["Offline", "Server"]', 'required_scenarios = ["Offline"]'))
    monkeypatch.setenv("RECSUITE_RULES_DIR", str(table_dir))
    system = tmp_path / "system.json"
    system.write_text(json.dumps({
        "status": "available", "host_memory_configuration": "8x 16 GB", "host_storage_type": "NVMe", "host_networking": "Ethernet",
        "host_network_card_count": "1", "host_networking_topology": "N/A", "cooling": "air", "host_storage_capacity": "1 TB",
        "host_processor_model_name": "AMD EPYC", "host_memory_capacity": "24 GB",
    }))  # fmt: skip
    sub = tmp_path / "sub"
    result = CliRunner().invoke(cli, ["submit", "--results", str(good_v6), "--org", "Acme", "--out", str(sub), "--system-json", str(system)])
    assert result.exit_code == 0, result.output
    org = sub / "closed/Acme"
    scen = org / "results/testsys/dlrm-v3/Offline"
    assert sorted(p.name for p in org.iterdir()) == ["documentation", "results", "src", "systems"]
    assert sorted(p.name for p in scen.iterdir()) == ["README.md", "TEST08", "accuracy", "measurements.json", "performance", "user.conf"]
    assert (org / "src/dlrm-v3/README.md").is_file() and (org / "systems/testsys.json").is_file()
    test08 = {str(p.relative_to(scen / "TEST08")) for p in (scen / "TEST08").rglob("*") if p.is_file()}
    assert {"verify_accuracy.txt", "accuracy/mlperf_log_accuracy.json"} <= test08
    assert "TEST PASS" in (scen / "TEST08/verify_accuracy.txt").read_text().splitlines()
    text = (scen / "accuracy/accuracy.txt").read_text()
    assert set(mlperf_v6.parse_report(text)) == set(mlperf_v6.METRICS) and "\nhash=" in text
    measured = json.loads((scen / "measurements.json").read_text())
    assert measured["input_data_types"] and measured["weight_data_types"]
    checked = CliRunner().invoke(cli, ["check", str(sub), "--profile", "smoke"])
    assert checked.exit_code == 0, checked.output
    # v5.1's compliance/ folder is no folder of a v6.0 org.
    stray = org / "compliance/testsys/dlrm-v3/Offline/TEST08/verify_accuracy.txt"
    stray.parent.mkdir(parents=True)
    stray.write_text("TEST PASS\n")
    assert "submission.layout" in CliRunner().invoke(cli, ["check", str(sub), "--profile", "smoke"]).output
    shutil.rmtree(org / "compliance")
    # A TEST08 verdict removed from the tree fails it.
    (scen / "TEST08/verify_accuracy.txt").unlink()
    assert CliRunner().invoke(cli, ["check", str(sub), "--profile", "smoke"]).exit_code == 1
