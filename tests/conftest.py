"""Shared fixtures: a CLI runner, one dataset cache for the session, and a results folder."""

from __future__ import annotations

import configparser
import dataclasses
import importlib.util
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from suite.backends.base import Backend
from suite.config import Mode, RunConfig, Scenario
from suite.datasets.batch import Batch
from suite.models import ModelSpec
from suite.placement import Placement
from suite.runner import RunResult, run

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
KAGGLE_SAMPLE = SHARED / "data" / "criteo-kaggle-sample-100.tsv"


def pytest_configure(config: pytest.Config) -> None:
    """Without a GPU, Triton's kernels run under its CPU interpreter. Triton reads the switch once,
    when it is first imported, so it is set here, before any test module is collected: set in one
    module, it came too late whenever another module imported a kernel first (the
    ahead-of-time compile test collected before ``test_kernels.py`` failed nine of its tests)."""
    if importlib.util.find_spec("triton") is None:
        return
    import torch

    if not torch.cuda.is_available():
        os.environ.setdefault("TRITON_INTERPRET", "1")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    if not has_cuda:
        skip = pytest.mark.skip(reason="needs a CUDA GPU")
        for item in items:
            if "cuda" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One dataset cache for the whole session, so each dataset is generated once."""
    path = tmp_path_factory.mktemp("data")
    old = os.environ.get("RECSUITE_DATA_DIR")
    os.environ["RECSUITE_DATA_DIR"] = str(path)
    yield path
    if old is None:
        os.environ.pop("RECSUITE_DATA_DIR", None)
    else:
        os.environ["RECSUITE_DATA_DIR"] = old


@pytest.fixture
def runner(data_dir: Path) -> CliRunner:
    return CliRunner()


@pytest.fixture
def results(tmp_path: Path) -> Path:
    return tmp_path / "results"


@pytest.fixture
def kaggle_sample() -> Path:
    if not KAGGLE_SAMPLE.is_file():
        pytest.skip(f"{KAGGLE_SAMPLE} is not here")
    return KAGGLE_SAMPLE


def smoke_config(results: Path, **changes: object) -> RunConfig:
    """A smoke-profile run of DLRM-RMC1 (tiny) on the null backend, for harness tests."""
    base: dict[str, object] = {
        "model": ModelSpec(name="dlrm-rmc1", scale="tiny"),
        "backend": "null",
        "scenario": Scenario.OFFLINE,
        "mode": Mode.PERFORMANCE,
        "profile": "smoke",
        "output": results,
        "system": "testsys",
        "progress": False,
    }
    base.update(changes)
    return RunConfig(**base)


#: How many times :func:`run_valid` makes a performance run before it lets INVALID stand.
VALID_ATTEMPTS = 3


def run_valid(config: RunConfig, backend: Callable[[], Backend] | None = None) -> RunResult:
    """``run(config)``, made again over its own folder while LoadGen calls it INVALID (at most
    :data:`VALID_ATTEMPTS` runs), for tests whose subject is what a VALID run writes, not the latency.

    A smoke Server run lasts one second: on CI's two cores, shared with another process, one
    scheduler stall of some 80 ms puts more than 1% of its queries past the 60-ms p99 and LoadGen
    rightly calls the run INVALID (CI saw p99 82.4 ms for a null backend at 1,000 QPS). That is the
    machine's doing; a change that makes such runs INVALID every time still fails. ``backend``
    makes the unloaded backend each run uses (a test's own; the registry's when None).
    """
    result = run(config, backend=backend() if backend else None)
    for _ in range(VALID_ATTEMPTS - 1):
        if config.mode is not Mode.PERFORMANCE or result.data["performance"]["validity"] == "VALID":
            break
        result = run(dataclasses.replace(config, overwrite=True), backend=backend() if backend else None)
    return result


def invoke_valid(runner: CliRunner, args: list[str]) -> Any:
    """``suite run ARGS`` through ``runner`` (click's result), made again with ``--overwrite`` while
    the run it wrote is a performance run LoadGen calls INVALID: :func:`run_valid` for the CLI."""
    from suite.cli import cli

    for attempt in range(VALID_ATTEMPTS):
        result = runner.invoke(cli, ["run", *args, *(["--overwrite"] if attempt else [])])
        if result.exit_code != 0:
            return result
        record = json.loads((Path(result.stdout.rstrip().rpartition(" -> ")[2]) / "result.json").read_text())
        if record["config"]["mode"] != "performance" or record["performance"]["validity"] == "VALID":
            return result
    return result


def package_dirs() -> dict[str, Path]:
    """setup.cfg's packages and the folder each lives in (``suite.backends`` -> ``backends/``)."""
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    mapped = {
        name.strip(): folder.strip()
        for name, _, folder in (line.partition("=") for line in cfg["options"]["package_dir"].splitlines())
        if name.strip()
    }
    return {
        package: REPO / mapped.get(package, package.replace(".", "/")) for package in cfg["options"]["packages"].split()
    }


def assert_placement_scores_like(placement: Placement, items: Batch, reference: Backend, *, rows_worker: int) -> None:
    """Every worker of ``placement`` (items attached) scores row spans as ``reference`` does in
    this process, float32 and bit for bit; several requests in one job, one of them rows not cut
    from the items, come back back to back (on ``rows_worker``)."""
    spans = [(10, 300), (1000, 1017), (4000, 4096)]
    want = reference.predict(Batch.of_spans(items, spans))
    for worker in range(2):
        got = placement.submit(worker, [spans]).result(timeout=60)
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, want)
    rows = Batch(dense=items.dense[5:9].copy(), sparse=tuple(s[5:9].copy() for s in items.sparse))
    both = placement.submit(rows_worker, [[(0, 3)], rows]).result(timeout=60)
    np.testing.assert_array_equal(both, np.concatenate([reference.predict(Batch.of_spans(items, [(0, 3)])),
                                                        reference.predict(rows)]))
