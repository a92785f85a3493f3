"""Helpers shared by the benchmarks (run by hand: ``.venv/bin/python benchmarks/<name>.py``)."""

from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path

from suite import harness
from suite.config import RunConfig, Scenario, Settings, resolve
from suite.datasets import synthetic
from suite.datasets.batch import Batch
from suite.datasets.library import QueryLibrary
from suite.datasets.queries import QuerySizes
from suite.datasets.store import Dataset
from suite.harness import Outcome
from suite.models import ModelSpec
from suite.results import DetailLog, read_detail


def library_for(spec: ModelSpec, rows: int | None = None, query_size: str | None = None) -> tuple[QueryLibrary, Settings]:
    """The cached dataset of ``spec`` as a query library, and the Offline settings of its rule table."""
    config = RunConfig(model=spec, backend="null", scenario=Scenario.OFFLINE, profile="smoke", query_size=query_size)
    settings = resolve(config)
    data = Dataset.load(synthetic.ensure(spec, rows or config.dataset_rows))
    offsets = QuerySizes.parse(settings.query_size).offsets(len(data), seed=spec.seed)
    return QueryLibrary(data, offsets), settings


def scratch() -> Path:
    return Path(tempfile.mkdtemp(prefix="recsuite-bench-"))


def loadgen_run(library: QueryLibrary, backend, settings: Settings, out: Path | None = None,  # type: ignore[no-untyped-def]
                **harness_options: object) -> tuple[Outcome, DetailLog]:
    """One real LoadGen run through the harness into ``out`` (a fresh scratch folder by default):
    the harness's outcome and LoadGen's detail log."""
    out = out if out is not None else scratch()
    outcome = harness.run(library, backend, settings, out, progress=False, **harness_options)  # type: ignore[arg-type]
    return outcome, read_detail(out / "mlperf_log_detail.txt")


def with_settings(settings: Settings, **changes: object) -> Settings:
    return dataclasses.replace(settings, **changes)  # type: ignore[arg-type]


def raw_items_per_s(backend, items: Batch, batch_items: int, seconds: float) -> float:  # type: ignore[no-untyped-def]
    """``backend.predict`` back to back on consecutive ``batch_items``-item slices of ``items``."""
    n = len(items)
    starts = list(range(0, n - batch_items + 1, batch_items))
    batches = [Batch(dense=items.dense[s:s + batch_items], sparse=tuple(x[s:s + batch_items] for x in items.sparse)) for s in starts]
    backend.predict(batches[0])
    done = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for b in batches:
            backend.predict(b)
            done += len(b)
    return done / (time.perf_counter() - t0)
