"""The runner: one loaded backend across LoadGen runs, each run with its record."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from conftest import smoke_config

from suite.backends.base import BackendConfig
from suite.backends.null import NullBackend
from suite.config import Mode, Scenario
from suite.errors import BackendError, ConfigError
from suite.models import ModelSpec
from suite.record import read_result
from suite.runner import Runner


class CountingLoads(NullBackend):
    """The null backend, counting its loads and closes (this test only)."""

    loads = 0
    closes = 0

    def load(self) -> None:
        type(self).loads += 1
        super().load()

    def close(self) -> None:
        type(self).closes += 1
        super().close()


def test_a_runner_loads_once_and_every_run_writes_its_record(results: Path) -> None:
    config = smoke_config(results, target_qps=2000.0)
    backend = CountingLoads(BackendConfig(model=config.model))
    with Runner(config, backend=backend) as runner:
        first = runner.run()
        server = dataclasses.replace(config, scenario=Scenario.SERVER, target_qps=200.0)
        second = runner.run(server)
        accuracy = runner.run(dataclasses.replace(config, mode=Mode.ACCURACY), run_dir=results / "elsewhere")
        assert (CountingLoads.loads, CountingLoads.closes) == (1, 0)
    assert CountingLoads.closes == 1
    assert first.path == config.run_dir() and second.path == server.run_dir()
    for result in (first, second, accuracy):
        record = read_result(result.path / "result.json")
        assert record.status in ("valid", "invalid") and result.outcome is not None
        assert json.loads((result.path / "result.json").read_text())["harness"]["completed_queries"] == result.outcome.completed_queries
    assert read_result(second.path / "result.json").config.scenario == "Server"
    assert accuracy.data["accuracy"]["passed"] in (True, False)
    with pytest.raises(BackendError, match="^backend 'null' is closed: this runner makes no more runs$"):
        runner.run()


def test_a_run_of_another_model_is_refused_before_its_folder_is_made(results: Path) -> None:
    config = smoke_config(results, target_qps=2000.0)
    other = dataclasses.replace(config, model=ModelSpec(name="dlrm-rmc3", scale="tiny"))
    with Runner(config) as runner, pytest.raises(ConfigError, match="^a run of this runner must keep its model "):
        runner.run(other)
    assert not other.run_dir().exists()
