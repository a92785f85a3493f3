"""Helpers shared by the benchmarks (run by hand: ``.venv/bin/python benchmarks/<name>.py``)."""

from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path

from suite.config import RunConfig, Scenario, Settings, resolve
from suite.datasets import synthetic
from suite.datasets.batch import Batch
from suite.datasets.library import QueryLibrary
from suite.datasets.queries import QuerySizes
from suite.datasets.store import Dataset
from suite.harness import Outcome
from suite.models import ModelSpec
from suite.results import DetailLog, read_detail
from suite.runner import Runner, RunResult


def library_for(spec: ModelSpec, rows: int | None = None, query_size: str | None = None) -> tuple[QueryLibrary, Settings]:
    """The cached dataset of ``spec`` as a query library, and the Offline settings of its rule table."""
    config = RunConfig(model=spec, backend="null", scenario=Scenario.OFFLINE, profile="smoke", query_size=query_size)
    settings = resolve(config)
    data = Dataset.load(synthetic.ensure(spec, rows or config.dataset_rows))
    offsets = QuerySizes.parse(settings.query_size).offsets(len(data), seed=spec.seed)
    return QueryLibrary(data, offsets), settings


def scratch() -> Path:
    return Path(tempfile.mkdtemp(prefix="recsuite-bench-"))


#: ``settings.target_qps_source`` of a benchmark's run: the benchmark chose the target.
BENCHMARK_SOURCE = "benchmark"


def runner_for(library: QueryLibrary, backend, settings: Settings, out: Path, *, workers: int | None = None,
               power: bool = False, backend_name: str | None = None) -> Runner:
    """A :class:`~suite.runner.Runner` around ``backend``, already loaded by the benchmark, and
    ``library``: the one path to LoadGen, so the benchmark's runs leave their records too.

    ``settings`` are run as they are: the config the record shows carries their batcher and
    ``workers`` (1 by default, as a bare harness run), so nothing the backend declares replaces them.
    """
    config = RunConfig(
        model=backend.config.model,
        backend=backend_name or backend.name,
        scenario=settings.scenario,
        mode=settings.mode,
        profile=settings.profile,
        rules=settings.rules,
        variant=settings.variant,
        query_size=settings.query_size,
        output=out.parent,
        threads=backend.config.threads,
        precision=backend.config.precision,
        max_batch_items=settings.max_batch_items,
        batch_timeout_us=settings.batch_timeout_us,
        workers=workers or 1,
        backend_options=tuple(backend.config.options),
        progress=False,
        power=power,
    )
    return Runner(config, backend=backend, library=library, loaded=True)


def record_run(library: QueryLibrary, backend, settings: Settings, out: Path | None = None, *,
               workers: int | None = None, power: bool = False, backend_name: str | None = None) -> RunResult:
    """One real LoadGen run through the runner into ``out`` (a fresh scratch folder by default):
    LoadGen's logs, ``config.json`` and ``result.json``; a run that failed is returned, not raised."""
    out = out if out is not None else scratch()
    runner = runner_for(library, backend, settings, out, workers=workers, power=power, backend_name=backend_name)
    return runner.run(settings=dataclasses.replace(settings, target_qps_source=BENCHMARK_SOURCE), run_dir=out,
                      check=False)


def loadgen_run(library: QueryLibrary, backend, settings: Settings, out: Path | None = None, *,
                workers: int | None = None, power: bool = False, backend_name: str | None = None) -> tuple[Outcome, DetailLog]:
    """:func:`record_run`, as the harness's outcome and LoadGen's detail log."""
    result = record_run(library, backend, settings, out, workers=workers, power=power, backend_name=backend_name)
    assert result.outcome is not None
    return result.outcome, read_detail(result.path / "mlperf_log_detail.txt")


def with_settings(settings: Settings, **changes: object) -> Settings:
    return dataclasses.replace(settings, **changes)


def raw_items_per_s(backend, items: Batch, batch_items: int, seconds: float) -> float:
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


def cuda_ms(fn, calls: int = 20, warmups: int = 2) -> float:
    """Mean GPU time of ``fn()`` in ms over ``calls`` calls, by CUDA events around them all, after
    ``warmups`` untimed calls (compiles, autotuning and first-touch allocations stay outside)."""
    import torch

    for _ in range(warmups):
        fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(calls):
        fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / calls
