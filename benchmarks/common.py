"""Helpers shared by the benchmarks (run by hand: ``.venv/bin/python benchmarks/<name>.py``)."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

from suite.config import RunConfig, Scenario, Settings, resolve
from suite.datasets import synthetic
from suite.datasets.library import QueryLibrary
from suite.datasets.queries import QuerySizes
from suite.datasets.store import Dataset
from suite.models import ModelSpec


def library_for(spec: ModelSpec, rows: int | None = None, query_size: str | None = None) -> tuple[QueryLibrary, Settings]:
    """The cached dataset of ``spec`` as a query library, and the Offline settings of its rule table."""
    config = RunConfig(model=spec, backend="null", scenario=Scenario.OFFLINE, profile="smoke", query_size=query_size)
    settings = resolve(config)
    data = Dataset.load(synthetic.ensure(spec, rows or config.dataset_rows))
    offsets = QuerySizes.parse(settings.query_size).offsets(len(data), seed=spec.seed)
    return QueryLibrary(data, offsets), settings


def scratch() -> Path:
    return Path(tempfile.mkdtemp(prefix="recsuite-bench-"))


def with_settings(settings: Settings, **changes: object) -> Settings:
    return dataclasses.replace(settings, **changes)  # type: ignore[arg-type]
