"""Shared fixtures: a CLI runner, one dataset cache for the session, and a results folder."""

from __future__ import annotations

import configparser
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from suite.config import Mode, RunConfig, Scenario
from suite.models import ModelSpec

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
KAGGLE_SAMPLE = SHARED / "data" / "criteo-kaggle-sample-100.tsv"


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
    return RunConfig(**base)  # type: ignore[arg-type]


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
