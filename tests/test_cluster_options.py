"""``--cluster``: refused with one line and exit code 2 when malformed, combined with another
placement, without Ray installed, or pointing at nothing; nothing is written then. Needs no
running cluster (and, but for the last test, no Ray)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from suite.cli import cli

SMOKE = ["run", "--model", "dlrm-rmc1", "--scale", "tiny", "--profile", "smoke", "--scenario", "offline", "--no-progress"]
FORM = "'cluster' must be ray (RAY_ADDRESS, else the cluster `ray start` started here) or ray://HOST:PORT (got {!r})"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cluster", "rayx"], FORM.format("rayx")),
        (["--cluster", "ray://host"], FORM.format("ray://host")),
        (["--cluster", "ray://:10001"], FORM.format("ray://:10001")),
        (["--cluster", "ray://h:99999"], FORM.format("ray://h:99999")),
        (["--cluster", "ray", "--processes", "2"],
         "'cluster' and 'processes' cannot be combined (--cluster places one worker per GPU or node of the cluster)"),
        (["--cluster", "ray", "--backend", "deeprecsched"],
         "'cluster' does not place deeprecsched (it schedules its own workers on this host)"),
        (["--cluster-mode", "network"],
         "'cluster-mode' network needs --cluster (the Network division's SUT runs on other nodes than LoadGen)"),
        (["--cluster", "ray", "--cluster-mode", "netwrk"], "'cluster-mode' must be one of ['batched', 'network'] (got 'netwrk')"),
    ],
)
def test_bad_cluster_options_are_refused(runner: CliRunner, tmp_path: Path, args: list[str], message: str) -> None:
    backend = [] if "--backend" in args else ["--backend", "torch-cpu"]
    result = runner.invoke(cli, [*SMOKE, *backend, "--output", str(tmp_path), *args])
    assert (result.exit_code, result.stderr.strip()) == (2, f"Error: {message}")
    assert not any(tmp_path.iterdir())


def test_without_ray_the_error_names_the_extra(runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError, as where it is not installed
    result = runner.invoke(cli, [*SMOKE, "--backend", "torch-cpu", "--cluster", "ray", "--output", str(tmp_path)])
    assert (result.exit_code, result.stderr.strip()) == (
        2, "Error: --cluster ray needs Ray, which is not installed: pip install 'recsuite[cluster]'")
    assert not any(tmp_path.iterdir())


def test_a_cluster_address_that_does_not_answer_is_refused(runner: CliRunner, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    result = runner.invoke(cli, [*SMOKE, "--backend", "torch-cpu", "--cluster", "ray://127.0.0.1:1", "--output", str(tmp_path)])
    assert (result.exit_code, result.stderr.strip()) == (2, "Error: the Ray cluster at ray://127.0.0.1:1 does not answer (Connection refused)")
    assert not any(tmp_path.iterdir())
