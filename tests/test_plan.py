"""``suite plan``: an official submission's runs and their lengths, from the rule table's minimums and
one measured Offline rate."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import smoke_config

from suite import rules
from suite.cli import cli
from suite.plan import submission_plan
from suite.rules import RuleSet
from suite.runner import run


def test_a_gpu_rate_is_bound_by_the_minimum_durations() -> None:
    """At 9.85 M items/s (the H200's fp8 Offline): Offline issues rate x 600 s x 1.1 samples,
    Server runs 600 s, the accuracy runs cover MLPerf's 330,067 samples; TEST01 repeats each
    performance run."""
    plan = submission_plan(RuleSet.load("mlperf-v5.1"), "dlrm-v2", 9.85e6, server_fraction=0.8)
    rate = 9.85e6 / 270
    assert plan.benchmark == "dlrm-v2-99" and plan.samples_per_s == pytest.approx(rate)
    assert [(s.scenario, s.run) for s in plan.steps] == [
        ("Offline", "performance"), ("Offline", "TEST01 performance"), ("Offline", "accuracy"),
        ("Server", "performance"), ("Server", "TEST01 performance"), ("Server", "accuracy"),
    ]  # fmt: skip
    offline, _, offline_acc, server, _, server_acc = plan.steps
    assert offline.samples == math.ceil(rate * 660) and offline.seconds == pytest.approx(660, rel=1e-6)
    assert server.seconds == pytest.approx(600, rel=1e-6) and server.why == "min duration 600 s"
    assert offline_acc.samples == server_acc.samples == 330_067
    assert offline_acc.seconds == pytest.approx(330_067 / rate) and server_acc.seconds == pytest.approx(330_067 / (0.8 * rate))
    assert plan.seconds == pytest.approx(2 * 660 + 2 * 600 + 330_067 / rate * (1 + 1 / 0.8), rel=1e-6)


def test_a_cpu_rate_is_bound_by_offlines_24576_samples_and_the_accuracy_runs() -> None:
    plan = submission_plan(RuleSet.load("mlperf-v5.1"), "dlrm-v2", 1655.0, server_fraction=0.5, variant="99.9")
    rate = 1655.0 / 270
    offline, _, offline_acc, *_ = plan.steps
    assert plan.benchmark == "dlrm-v2-99.9"
    assert offline.samples == 24_576 and offline.seconds == pytest.approx(24_576 / rate)
    assert offline_acc.seconds == pytest.approx(330_067 / rate)


def test_cli_plans_from_a_measured_offline_run(tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    probe = run(smoke_config(tmp_path / "results")).path
    runner = CliRunner()
    # dlrm-rmc1 has no MLPerf dataset size: the plan says so in one line.
    result = runner.invoke(cli, ["plan", str(probe)])
    assert result.exit_code == 2
    assert result.stderr == "Error: mlperf-v5.1 sets no dataset size for dlrm-rmc1: an accuracy run's length is unknown\n"
    # With mlperf-v5.1's dlrm-v2 entries applying to dlrm-rmc1 (as in test_audit), the plan prints.
    rules_dir = Path(shutil.copytree(rules.rules_dir(), tmp_path / "rules"))
    table = rules_dir / "mlperf-v5.1.toml"
    table.write_text(table.read_text().replace('"dlrm-v2"', '"dlrm-rmc1"').replace('"dlrm-v2.', '"dlrm-rmc1.'))
    monkeypatch.setenv("RECSUITE_RULES_DIR", str(rules_dir))
    result = runner.invoke(cli, ["plan", str(probe), "--server-fraction", "0.5"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("dlrm-rmc1-99: an official submission at ") and "items/s, 270 items a sample), Server at " in lines[0]
    assert lines[1] == f"measured: the rate, from {probe / 'result.json'}; computed: everything below"
    assert [line.split()[:2] for line in lines[3:9]] == [["Offline", "performance"], ["Offline", "TEST01"], ["Offline", "accuracy"],
                                                          ["Server", "performance"], ["Server", "TEST01"], ["Server", "accuracy"]]  # fmt: skip
    assert lines[-1].startswith("total") and lines[-1].endswith("without loading, warm-up and generating the data")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["/nonexistent/run"], "Error: 'run' '/nonexistent/run' holds no result.json"),
        (["--server-fraction", "0", "."], "Error: 'server-fraction' must be"),
    ],
)
def test_cli_plan_bad_input_is_one_line(args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, ["plan", *args])
    assert result.exit_code == 2
    assert result.stderr.startswith(message) and len(result.stderr.splitlines()) == 1
