"""The one path to LoadGen: :class:`Runner` (a loaded backend and its queries, kept across runs)
and :func:`run` (``suite run`` as a function: config in, result folder out).

Every LoadGen run of the suite (``suite run``, ``audit``, ``tune``, the benchmarks) goes through
:meth:`Runner.run`, so every one writes ``config.json`` and ``result.json``.

Size: this module is over 450 lines because it holds the one path from a config to a run folder: checks, load, probe, warm-up, the run and the atomic record.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import platform
import shutil
import socket
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from suite import sysinfo, userconf
from suite.backends import Backend, BackendConfig, get_backend
from suite.config import AUTO, Mode, RunConfig, Scenario, Settings, resolve
from suite.datasets import synthetic
from suite.datasets.library import QueryLibrary, Staging
from suite.datasets.queries import QuerySizes
from suite.datasets.store import Dataset
from suite.errors import BackendError, ConfigError, DatasetError, ResultExistsError, RunFailedError, RunInterrupted, SuiteError
from suite.inputs import MAX_LOADGEN_QUERIES, check_writable_dir
from suite.interrupts import stop_signals
from suite.models.weights import verify as verify_weights
from suite.record import SCHEMA_VERSION
from suite.results import (
    ACCURACY_LOG,
    DETAIL,
    NOT_GATED,
    AccuracyReport,
    performance,
    read_accuracy_log,
    read_detail,
    score_accuracy,
    write_json,
    write_text,
)
from suite.rules import RuleSet

if TYPE_CHECKING:
    from suite.harness import Outcome
    from suite.mlperf_v6 import V6AccuracyReport
    from suite.tune import TunedSetting

log = logging.getLogger(__name__)

#: Most seconds of timed ``predict`` calls behind a ``--target-qps auto``.
PROBE_S = 2.0
#: Offline's expected QPS is the probe's peak rate (its calls' 90th-percentile speed) times this.
#: LoadGen issues expected QPS x min duration x 1.1 samples, so at the peak rate the run lasts about
#: 1.5x its minimum. A run faster than its expected QPS ends before its minimum duration and is
#: INVALID, a slower one only runs longer; on a shared machine the probe's mean caught a busy
#: moment often enough to do that, and its peak once: a `make run` whose 2-s probe peaked at
#: 114,385 items/s ran at 142,955 (1.25x), past the 1.21x that a factor of 1.1 allowed, and ended
#: at 58 s of 60, INVALID (docs/defaults.md, "Defaults on a shared machine").
OFFLINE_PROBE_FACTOR = 1.4
#: Offline's factor behind a probe shorter than ``STEADY_PROBE_S`` (the smoke profile's 0.1 s): a few
#: spans of calls catch a busy moment as their peak too, and a 1-s run that outruns its expected QPS
#: is INVALID (seen about once in a full test suite), so a short probe sizes the run for twice its peak.
SHORT_PROBE_OFFLINE_FACTOR = 2.0
STEADY_PROBE_S = 1.0
#: The percentile of the probe's speeds Offline sizes its run by, each speed measured over calls
#: adding up to at least PROBE_SPAN_S.
OFFLINE_PROBE_PERCENTILE = 90
PROBE_SPAN_S = 0.02
#: What LoadGen spends per query beyond what the probe does (the probe gathers, predicts and builds
#: the responses as the harness does), added to the probe's time per query. The whole path with the
#: null backend took 2.0 us a query Offline on the 2-core machine when it was quiet (26 us when
#: it was not), the probe 1.2 us of them. It matters only for a backend as fast as the null one,
#: and it is a floor, because too high a cost makes an Offline run end before its minimum duration.
HARNESS_QUERY_S = 0.5e-6
#: Server's target is the probe's rate, one query per batch from the run's workers, times this;
#: measured on dlrm-rmc1 (README, "Defaults on a shared machine").
SERVER_PROBE_FACTOR = 0.5
#: Server's target behind a backend that declares its batching (an accelerator: one query per batch
#: would measure its launch overhead, 3.6% of a GPU's capacity on DLRM-v2): the probe's items/s in
#: full batches of the Server batch size, over the mean query size, times this. Server batches are
#: never quite full and are padded to a bucket, and the queue needs headroom to hold its percentile.
#: On the H200 (benchmarks/results/gpu_server_h200) 0.8 gave 0.73-0.88x of Offline: VALID for
#: DLRM-v2, RMC1, DIN, DIEN, INVALID for RMC2, RMC3 and MT-WnD (host-bound at 42k queries/s).
SERVER_BATCHED_PROBE_FACTOR = 0.6

@dataclass(frozen=True)
class RunResult:
    """The outcome of ``suite run``, as written to ``result.json``."""

    path: Path
    data: dict[str, Any]
    #: What the harness counted (None: LoadGen did not run); not part of the record.
    outcome: Outcome | None = None

    @property
    def valid(self) -> bool:
        return bool(self.data["valid"])


def environment() -> dict[str, Any]:
    """The machine and software a result came from."""
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for dist in ("mlcommons-loadgen", "torch", "numpy", "onnxruntime", "recsuite"):
        try:
            versions[dist] = version(dist)
        except PackageNotFoundError:
            pass
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": sysinfo.cpu_model() or platform.processor(),
        "cores": os.cpu_count(),
        "cores_available": len(os.sched_getaffinity(0)),
        "versions": versions,
    }


def load_dataset(config: RunConfig) -> Dataset:
    """The dataset of the run: ``--dataset`` if given, else the cached synthetic one (made if absent)."""
    if config.dataset is not None:
        dataset = Dataset.load(config.dataset)
        made_for = dataset.meta.get("model", {})
        if made_for.get("name") != config.model.name or made_for.get("scale") != config.model.scale:
            raise DatasetError(
                f"{config.dataset} was imported for {made_for.get('name')} at scale {made_for.get('scale')}, "
                f"not {config.model.name} at scale {config.model.scale}"
            )
        tasks = config.model.schema.tasks
        if int(dataset.meta.get("tasks", 1)) != tasks:
            raise DatasetError(f"{config.dataset} holds {dataset.meta.get('tasks')} task label(s), not {tasks}")
        return dataset
    # Generated data are labelled by the seeded teacher, whatever weights the run serves.
    teacher = dataclasses.replace(config.model, weights=None)
    return Dataset.load(synthetic.ensure(teacher, config.dataset_rows, config.data_dir))


def load_library(config: RunConfig, settings: Settings) -> QueryLibrary:
    """The run's dataset, cut into queries of the sizes ``settings`` draw (seeded by the model's seed)."""
    dataset = load_dataset(config)
    offsets = QuerySizes.parse(settings.query_size).offsets(len(dataset), seed=config.model.seed)
    return QueryLibrary(dataset, offsets)


def reference_auc(config: RunConfig, dataset: Dataset, settings: Settings) -> tuple[list[float] | None, str | None]:
    """The reference AUC (per task) the accuracy gate is a fraction of, and where it came from: the
    rule set's fixed one (MLPerf's, whatever data the run used), else ``--reference-auc``, else the
    dataset's recorded one (generated data: the teacher's), else none."""
    tasks = config.model.task_count
    if settings.reference_auc_percent:
        return [settings.reference_auc_percent / 100] * tasks, "MLPerf's reference, Criteo day 23"
    if config.reference_auc is not None:
        return [config.reference_auc] * tasks, "given by --reference-auc"
    if dataset.reference_auc is not None:
        kind = dataset.meta.get("source", "synthetic")
        return list(dataset.reference_auc), f"the dataset's recorded reference: {kind} data, the teacher model's AUC on its own labels"
    return None, None


def check_loadgen_work(settings: Settings, conf: userconf.UserConf | None) -> None:
    """Refuse a target QPS and minimum duration (user.conf's where it sets them) that would make
    LoadGen generate more than ``MAX_LOADGEN_QUERIES`` queries up front (Offline, Server)."""
    if settings.scenario not in (Scenario.OFFLINE, Scenario.SERVER):
        return
    qps, duration_ms = settings.target_qps, float(settings.min_duration_ms)
    if conf is not None:
        qps = conf.value(settings.loadgen_model, settings.scenario.value, "target_qps") or qps
        found = conf.value(settings.loadgen_model, settings.scenario.value, "min_duration")
        duration_ms = duration_ms if found is None else found
    queries = qps * duration_ms / 1000 * (1.1 if settings.scenario is Scenario.OFFLINE else 1.0)
    if queries > MAX_LOADGEN_QUERIES:
        raise ConfigError(
            f"'target-qps' {qps:g} over a minimum duration of {duration_ms / 1000:g} s asks LoadGen for "
            f"{queries:.3g} queries (at most {MAX_LOADGEN_QUERIES:.0e}, about 200 bytes each)"
        )


def prepare_run_dir(path: Path, overwrite: bool) -> None:
    """Create the run folder; refuse an existing one unless ``overwrite``."""
    if path.exists() and any(path.iterdir()):
        if not overwrite:
            raise ResultExistsError(f"{path} already holds a result (use --overwrite to replace it)")
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)


@dataclass(frozen=True)
class Warmup:
    """Untimed ``predict`` calls made before LoadGen's clock starts, and the probe timed among them.

    Every worker thread the harness will use (or a thread in its place) first predicts the largest
    batch of the run and one of its usual size; then, when the target QPS is ``auto``, all of them
    predict batches of the run's usual size for ``probe_s`` seconds: Offline's full batches (and
    Server's, behind a backend that declared its batching), one query per batch otherwise. Each call gathers its rows from the run's own queries
    and builds LoadGen's responses as the harness does.
    """

    batches: int
    items: int
    seconds: float
    workers: int
    largest_batch_items: int
    probe_s: float = 0.0
    probe_batches: int = 0
    probe_items_per_s: float = 0.0
    probe_queries_per_s: float = 0.0
    #: Workers x the 90th percentile of the probe's items/s over 20-ms spans of calls: what the
    #: backend does when the machine lets it.
    probe_peak_items_per_s: float = 0.0
    errors: int = 0
    first_error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _consecutive(library: QueryLibrary, start: int, limit: int) -> list[int]:
    """Queries from ``start`` on, as many as fit in ``limit`` items (at least one)."""
    sizes = library.sizes
    end, items = start, 0
    while end < len(library) and (end == start or items + sizes[end] <= limit):
        items += int(sizes[end])
        end += 1
    return list(range(start, end))


def warm_up(backend: Backend, library: QueryLibrary, settings: Settings, workers: int, *, probe_s: float = 0.0,
            full_batches: bool = False) -> Warmup:
    """Warm ``backend`` on the run's own batches from ``workers`` threads, timing the last ``probe_s``
    seconds (0: no probe). The calling thread is worker 0, as in the harness. A failing call is
    counted, not raised: the run then shows the failure where LoadGen records it.

    ``full_batches``: probe with batches of the run's batch limit in every scenario, as Offline
    does (a Server run on a backend that declared its batching)."""
    from suite.harness import GIL_SWITCH_INTERVAL_S, batcher_shape, rehearse_responses

    threads, limit = batcher_shape(backend, settings.max_batch_items, workers)
    n = len(library)
    if limit > 1:
        largest = _consecutive(library, 0, limit)
    else:
        largest = [int(np.argmax(library.sizes))]
    if (settings.scenario is Scenario.OFFLINE or full_batches) and limit > 1:
        usual = [largest]
        while len(usual) < 64 and usual[-1][-1] + 1 < n:
            usual.append(_consecutive(library, usual[-1][-1] + 1, limit))
    else:
        usual = [[i] for i in range(min(n, 256))]
    barrier = threading.Barrier(threads)
    lock = threading.Lock()
    totals = {"batches": 0, "items": 0, "probe_batches": 0, "probe_items": 0, "probe_queries": 0, "errors": 0}
    errors: list[str] = []
    window: list[float] = [0.0, 0.0]  # probe start, latest probe end
    rates: list[float] = []  # items/s over each span of probe calls

    sizes = library.sizes.tolist()

    def call(indices: list[int], staging: Staging) -> int:
        try:
            batch = library.gather(indices, staging)
            scores = backend.predict(batch)
            if isinstance(scores, np.ndarray) and scores.ndim:
                rehearse_responses(scores, [sizes[i] for i in indices])
        except Exception as exc:
            with lock:
                totals["errors"] += 1
                if not errors:
                    errors.append(f"{type(exc).__name__}: {exc}")
            return 0
        return len(batch)

    def work(k: int) -> None:
        staging = Staging()
        done = [call(idx, staging) for idx in (largest, usual[k % len(usual)])]
        with lock:
            totals["batches"] += 2
            totals["items"] += sum(done)
        if not probe_s:
            return
        if barrier.wait() == 0:
            window[0] = time.perf_counter()
        barrier.wait()
        deadline = window[0] + probe_s
        batches = items = queries = 0
        speeds = []
        i = k
        span_start, span_items = time.perf_counter(), 0
        while True:
            idx = usual[i % len(usual)]
            got = call(idx, staging)
            now = time.perf_counter()
            span_items += got
            if now - span_start >= PROBE_SPAN_S:  # speeds over spans, not single calls: timer noise
                speeds.append(span_items / (now - span_start))
                span_start, span_items = now, 0
            items += got
            queries += len(idx)
            batches += 1
            i += threads
            if now >= deadline:
                break
        with lock:
            rates.extend(speeds)
            window[1] = max(window[1], time.perf_counter())
            totals["probe_batches"] += batches
            totals["probe_items"] += items
            totals["probe_queries"] += queries

    t0 = time.perf_counter()
    pool = [threading.Thread(target=work, args=(k,), name=f"recsuite-warmup-{k}", daemon=True) for k in range(1, threads)]
    # The GIL hand-off of the run: with CPython's 5-ms default, workers that release the GIL in every
    # op wait that long to get it back, and the probe would measure that, not the backend.
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    try:
        for t in pool:
            t.start()
        work(0)
        for t in pool:
            t.join()
    finally:
        sys.setswitchinterval(switch_interval)
    seconds = time.perf_counter() - t0
    probed = window[1] - window[0] if probe_s else 0.0
    return Warmup(
        batches=totals["batches"] + totals["probe_batches"],
        items=totals["items"] + totals["probe_items"],
        seconds=seconds,
        workers=threads,
        largest_batch_items=int(library.sizes[largest].sum()),
        probe_s=probed,
        probe_batches=totals["probe_batches"],
        probe_items_per_s=totals["probe_items"] / probed if probed > 0 else 0.0,
        probe_queries_per_s=totals["probe_queries"] / probed if probed > 0 else 0.0,
        probe_peak_items_per_s=threads * float(np.percentile(rates, OFFLINE_PROBE_PERCENTILE)) if rates
        else (totals["probe_items"] / probed if probed > 0 else 0.0),
        errors=totals["errors"],
        first_error=errors[0] if errors else None,
    )


def calibrated(settings: Settings, warmup: Warmup, mean_query_items: float, *, full_batches: bool = False,
               shared_device: bool = False) -> tuple[Settings, dict[str, Any]]:
    """``settings`` with an ``auto`` target replaced from the probe, and the record of how.

    Offline: the probe's peak items/s over the mean query size, times :data:`OFFLINE_PROBE_FACTOR`
    (:data:`SHORT_PROBE_OFFLINE_FACTOR` behind a probe shorter than :data:`STEADY_PROBE_S`). With
    ``shared_device`` (the workers are lanes onto one device: a backend that declared its batching)
    the probe's mean items/s instead: the peak is each worker's fastest spans times the workers,
    which for lanes that take turns on one GPU counts each lane's turn as if it had the GPU alone
    (DLRM-v2 on an H200: peak 30.6 M items/s against a mean of 20.6 M and a run at 20.3 M, so a
    60-s Offline ran 132 s).
    Server: the probe's queries/s (one query per batch), times :data:`SERVER_PROBE_FACTOR`; with
    ``full_batches`` (the probe ran the declared Server batch size), the probe's mean items/s over
    the mean query size, times :data:`SERVER_BATCHED_PROBE_FACTOR`. All
    add :data:`HARNESS_QUERY_S` to the probe's time per query. A
    probe that failed or measured nothing keeps the rule table's number, and says so.
    """
    record: dict[str, Any] = {"target_qps_source": settings.target_qps_source}
    if settings.target_qps_source != AUTO:
        return settings, record
    if settings.scenario is Scenario.OFFLINE:
        factor = OFFLINE_PROBE_FACTOR if warmup.probe_s >= STEADY_PROBE_S else SHORT_PROBE_OFFLINE_FACTOR
        probed = warmup.probe_items_per_s if shared_device else warmup.probe_peak_items_per_s
        rate = probed / max(mean_query_items, 1e-9)
    elif full_batches:
        factor, rate = SERVER_BATCHED_PROBE_FACTOR, warmup.probe_items_per_s / max(mean_query_items, 1e-9)
    else:
        factor, rate = SERVER_PROBE_FACTOR, warmup.probe_queries_per_s
    if rate > 0:
        rate = 1 / (1 / rate + HARNESS_QUERY_S)
    record.update(
        probe_s=warmup.probe_s,
        probe_items_per_s=warmup.probe_items_per_s,
        probe_queries_per_s=warmup.probe_queries_per_s,
        probe_peak_items_per_s=warmup.probe_peak_items_per_s,
        mean_query_items=mean_query_items,
        harness_query_s=HARNESS_QUERY_S,
        factor=factor,
        probe_batches=f"full batches of {settings.max_batch_items} items" if full_batches or settings.scenario is Scenario.OFFLINE
        else "one query per batch",
    )
    if settings.scenario is Scenario.OFFLINE:
        record["probe_rate"] = "mean: lanes onto one device" if shared_device else "peak: each worker's fastest spans x workers"
    if warmup.errors or not rate > 0:
        why = f"the probe failed ({warmup.first_error})" if warmup.errors else "the probe measured nothing"
        record.update(target_qps=settings.target_qps, fallback=f"{why}; kept the rule table's number")
        return settings, record
    target = float(f"{rate * factor:.4g}")  # four significant digits: readable in the logs
    record["target_qps"] = target
    return dataclasses.replace(settings, target_qps=target), record


def run(
    config: RunConfig, *, backend: Backend | None = None, audit_config: Path | None = None, tuned: TunedSetting | None = None
) -> RunResult:
    """Run one LoadGen test as ``config`` says and write its result folder (``suite run``, ``suite
    audit``): a :class:`Runner` that makes one run and closes its backend.

    Args:
        backend: an unloaded backend to use instead of the registry's (tests inject failing ones).
        audit_config: a compliance audit's ``audit.config`` for LoadGen (see ``suite.audit``).
        tuned: the ``tuned.json`` applied to ``config`` (``--tuned``), recorded with its warning.

    Raises: as :meth:`Runner.run`.
    """
    runner = Runner(config, backend=backend)
    try:
        return runner.run(audit_config=audit_config, tuned=tuned, close=True)
    finally:
        runner.close()


class Runner:
    """The one path to LoadGen: a backend loaded once and the run's queries, kept across runs.

    ``suite run`` and ``suite audit`` make one run with it, ``suite tune`` many on one loaded
    backend (its tunable setting changed between them), the benchmarks theirs. Every run goes
    through :meth:`run`, which writes ``config.json`` before LoadGen starts and ``result.json``
    after (:mod:`suite.record`), so every LoadGen run leaves its record; nothing else calls
    ``harness.run`` (``tests/test_imports.py`` checks).

    Construction checks every input of ``config`` before the dataset loads or anything is written,
    and builds the backend (from the registry, or on the placement ``--devices``, ``--processes``
    or ``--cluster`` asks for). The backend loads in :meth:`load` or in the first :meth:`run`,
    where a failed load is recorded in that run's folder; :meth:`close` (or the ``with`` block's
    end) closes it.

    Args:
        backend: a backend to use instead of the registry's, unloaded (tests inject failing ones;
            benchmarks their own placements).
        library: the queries to run instead of ``config``'s dataset (a benchmark's).
        loaded: ``backend`` is loaded already (a benchmark measured it outside LoadGen first).
    """

    def __init__(self, config: RunConfig, *, backend: Backend | None = None, library: QueryLibrary | None = None,
                 loaded: bool = False) -> None:
        settings = _checked(config)
        verify_weights(config.model)
        backend_cls = get_backend(config.backend)
        placement = None
        if backend is None:
            from suite.placement import chosen
            from suite.placement.backend import check_fits, default_devices

            check_fits(config, backend_cls)
            backend_cls.check_options(config.backend_options)
            config = default_devices(config, backend_cls)
            placement = chosen(config)  # by name from the registry: --devices, --processes, --cluster
        check_writable_dir("output", config.output)
        cores = len(os.sched_getaffinity(0))
        if backend is None and placement is not None:
            backend, threads, workers = placement.place(config, backend_cls, cores)
        elif backend is None:
            threads, workers = backend_cls.parallelism(config.scenario, cores, config.threads)
            backend = backend_cls(
                BackendConfig(
                    model=config.model,
                    threads=threads,
                    precision=config.precision,
                    options=config.backend_options,
                )
            )
        else:
            threads, workers = type(backend).parallelism(config.scenario, cores, backend.config.threads)
        self.config = config
        self.settings = settings
        self.backend: Backend = backend
        #: Harness workers: ``--workers``, else the backend's policy (a declared batcher's, once loaded).
        self.workers = config.workers or workers
        self.parallelism_source = "default policy" if not (config.threads or config.workers) else "set by --threads/--workers"
        self._library = library
        self.loaded = loaded and backend is not None
        self.closed = False

    @property
    def library(self) -> QueryLibrary:
        """The queries every run issues: loaded from ``config``'s dataset on first use."""
        if self._library is None:
            self._library = load_library(self.config, self.settings)
        return self._library

    def load(self) -> None:
        """Load the backend, once.

        Raises:
            BackendError: the backend failed to load (its own :class:`SuiteError` passes as it is).
        """
        if self.loaded:
            return
        try:
            self.backend.load()
        except SuiteError:
            raise
        except Exception as exc:
            raise BackendError(f"backend {self.config.backend!r} failed to load: {type(exc).__name__}: {exc}") from exc
        self.loaded = True

    def close(self) -> None:
        """Close the backend (once; later runs are refused)."""
        if not self.closed:
            self.closed = True
            self.backend.close()

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(
        self,
        config: RunConfig | None = None,
        *,
        settings: Settings | None = None,
        run_dir: Path | None = None,
        audit_config: Path | None = None,
        tuned: TunedSetting | None = None,
        check: bool = True,
        close: bool = False,
    ) -> RunResult:
        """Run one LoadGen test and write its folder: ``config.json``, LoadGen's logs, ``result.json``.

        Before LoadGen starts, the loaded backend is warmed up (:func:`warm_up`), and an ``auto``
        target QPS is calibrated from the same calls (:func:`calibrated`); both are recorded.

        Args:
            config: this run's config (the runner's by default): another scenario, mode, target or
                option set of the same model on the same backend (``suite tune``'s points).
            settings: what LoadGen runs, instead of what the rule table resolves ``config`` to
                (a tune's search runs, a benchmark's); recorded as they are.
            run_dir: the run folder instead of ``config.run_dir()``.
            audit_config: a compliance audit's ``audit.config`` for LoadGen (see ``suite.audit``).
            tuned: the ``tuned.json`` applied to ``config`` (``--tuned``), recorded with its warning.
            check: raise :class:`RunFailedError` for a run that completed with errors (False: return
                its result, ``status`` failed, for a caller that reads every run).
            close: close the backend when LoadGen has ended, before the record is written (the
                last run of a runner: a signal while it closes is then recorded too).

        Raises:
            RunFailedError: the run finished with errors (``check``); the folder holds LoadGen's
                logs and a ``result.json`` marked invalid.
            RunInterrupted: SIGINT or SIGTERM came once the run folder was made; ``result.json`` says
                ``interrupted`` and what completed. When its ``loadgen_running`` is true, LoadGen was
                left running and the process must leave with ``os._exit`` (see ``suite.harness``).
        """
        from suite import harness

        if self.closed:
            raise BackendError(f"backend {self.config.backend!r} is closed: this runner makes no more runs")
        if config is None:
            config = self.config
        elif config is not self.config:
            _same_load(self.config, config)
        if settings is None:
            settings = self.settings if config is self.config else _checked(config)
        backend = self.backend
        library = self.library
        dataset = library.dataset
        workers = self.workers
        parallelism: dict[str, Any] = {"workers": workers, "parallelism": self.parallelism_source}

        run_dir = run_dir if run_dir is not None else config.run_dir()
        prepare_run_dir(run_dir, config.overwrite)
        started = dt.datetime.now(dt.UTC)
        base: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "config": config.to_dict(),
            # The benchmark name (dlrm-v2-99 / dlrm-v2-99.9 under mlperf-v5.1) a submission files it under.
            "benchmark": settings.benchmark,
            "settings": settings.to_dict(),
            "dataset": {
                "path": str(dataset.path),
                "items": len(dataset),
                "queries": len(library),
                "mean_query_items": float(library.sizes.mean()),
                **{k: dataset.meta.get(k) for k in ("source", "model", "reference_auc", "click_rate", "zipf_exponent")},
            },
            "environment": environment(),
            "started": started.isoformat(),
        }
        if tuned is not None:
            base["tuned"] = tuned.to_dict(config)
        write_json(run_dir / "config.json", base)

        errors: list[str] = []
        outcome = None
        meter = None
        if config.power:
            from suite.power import PowerMeter

            meter = PowerMeter()
        info: dict[str, Any] = {"name": config.backend}
        where: dict[str, Any] = {}
        interrupted: RunInterrupted | None = None
        # A signal stops the run where that is safe (see suite.interrupts): at once while the backend
        # loads, through the harness while LoadGen runs, and after the result is written otherwise.
        with stop_signals() as stop:
            try:
                declared = None
                with stop.raising():
                    try:
                        self.load()
                        info = {**backend.info().to_dict(), **parallelism}
                        where = placement_record(backend)
                        declared = backend.batch_defaults(config.scenario.value, settings.target_latency_ns)
                    except SuiteError:
                        raise
                    except Exception as exc:
                        raise BackendError(f"backend {config.backend!r} failed to load: {type(exc).__name__}: {exc}") from exc
                if declared is not None:
                    # What the backend measured at load, unless the user set it.
                    settings = dataclasses.replace(
                        settings,
                        max_batch_items=config.max_batch_items or declared.max_batch_items,
                        batch_timeout_us=declared.batch_timeout_us if config.batch_timeout_us is None else config.batch_timeout_us,
                        batches_in_flight=declared.batches_in_flight,
                    )
                    if not config.workers:
                        workers = declared.workers
                        parallelism["workers"] = workers
                with stop.raising():
                    backend.attach_items(library.items)
                    auto = settings.target_qps_source == AUTO
                    # A tenth of the run's minimum duration, at most PROBE_S: 2 s for the short profile.
                    probe_s = min(PROBE_S, settings.min_duration_ms / 10_000) if auto else 0.0
                    # A backend that declared its batching is probed at the batch size Server will use.
                    full = declared is not None and config.scenario is Scenario.SERVER
                    warmup = warm_up(backend, library, settings, workers, probe_s=probe_s, full_batches=full)
                settings, calibration = calibrated(settings, warmup, float(library.sizes.mean()), full_batches=full,
                                                   shared_device=declared is not None)
                base["settings"] = settings.to_dict()
                base["calibration"] = calibration
                base["warmup"] = warmup.to_dict()
                write_json(run_dir / "config.json", base)
                if auto:
                    log.info("target QPS %s from a %.1f-s probe (%.0f items/s)", settings.target_qps, warmup.probe_s,
                             warmup.probe_items_per_s)
                outcome = harness.run(
                    library,
                    backend,
                    settings,
                    run_dir,
                    user_conf=config.user_conf,
                    audit_config=audit_config,
                    workers=workers,
                    progress=config.progress,
                    observer=meter,
                )
                info = {**backend.info().to_dict(), **parallelism}
                where = placement_record(backend)
                errors = [f"backend raised {outcome.error_count} time(s); first: {e}" for e in outcome.errors[:1]]
            except RunInterrupted as exc:
                interrupted, outcome = exc, exc.outcome
                where = placement_record(backend)
            except SuiteError as exc:
                errors.append(str(exc))
                where = placement_record(backend)  # the lost workers, if one died
                _finish(run_dir, base, settings, config, library, info, outcome, errors, started, meter, placement=where)
                raise
            finally:
                if close:
                    self.close()
            if interrupted is None and stop.signum is not None:  # came after LoadGen ended
                interrupted = RunInterrupted(f"interrupted by {stop.name} after LoadGen ended", signum=stop.signum, outcome=outcome)
            result = _finish(run_dir, base, settings, config, library, info, outcome, errors, started, meter, interrupted,
                             placement=where)
        if interrupted is not None:
            what = str(interrupted) if outcome is not None else f"interrupted by {stop.name} before LoadGen started"
            raise RunInterrupted(
                f"{what}; result.json marked interrupted in {run_dir}",
                signum=interrupted.signum,
                loadgen_running=interrupted.loadgen_running,
                outcome=outcome,
            )
        if errors and check:
            raise RunFailedError(f"run invalid: {errors[0]} (logs kept in {run_dir})")
        return result


def _checked(config: RunConfig) -> Settings:
    """``config``'s settings, every input they depend on checked (before the dataset loads or the
    run folder is made)."""
    settings = resolve(config)
    QuerySizes.parse(settings.query_size)
    conf = userconf.parse(config.user_conf) if config.user_conf is not None else None
    check_loadgen_work(settings, conf)
    return settings


#: What a runner's loaded backend and queries were made for: a later run must not differ in these.
LOADED_FIELDS = ("model", "backend", "precision", "threads", "dataset", "rows", "data_dir", "devices", "processes", "cluster")


def _same_load(loaded: RunConfig, config: RunConfig) -> None:
    """Refuse a run ``config`` that needs another backend or other data than ``loaded``'s."""
    for name in LOADED_FIELDS:
        if getattr(config, name) != getattr(loaded, name):
            raise ConfigError(f"a run of this runner must keep its {name} ({getattr(loaded, name)!r}, got {getattr(config, name)!r})")


def placement_record(backend: Backend) -> dict[str, Any]:
    """``placement`` of the record: the workers a placed backend ran on, or the driver's threads
    on one node and one device (``suite.placement``)."""
    from suite.placement.backend import PlacedBackend

    if isinstance(backend, PlacedBackend):
        return backend.placement_info().to_dict()
    return {"name": "threads", "nodes": 1, "devices_per_node": 1, "workers": [], "devices": [], "round_trip_us": None,
            "lost_workers": []}


def _finish(
    run_dir: Path,
    base: dict[str, Any],
    settings: Settings,
    config: RunConfig,
    library: QueryLibrary,
    info: dict[str, Any],
    outcome: Any,
    errors: list[str],
    started: dt.datetime,
    meter: Any = None,
    interrupted: RunInterrupted | None = None,
    *,
    placement: dict[str, Any] | None = None,
) -> RunResult:
    data = dict(base)
    data["backend"] = info
    if placement:
        data["placement"] = placement
    data["finished"] = dt.datetime.now(dt.UTC).isoformat()
    data["loadgen_version"] = _loadgen_version()
    perf: dict[str, Any] = {}
    loadgen_errors: list[str] = []
    detail_path = run_dir / DETAIL
    if detail_path.is_file():
        detail = read_detail(detail_path)
        loadgen_errors = detail.errors
        if config.mode is Mode.PERFORMANCE:
            perf = performance(detail, config.scenario)
    if outcome is not None:
        duration = outcome.duration_s
        data["harness"] = {
            "completed_queries": outcome.completed_queries,
            "completed_items": outcome.completed_items,
            "batches": outcome.batches,
            "workers": outcome.workers,
            "max_batch_items": outcome.max_batch_items,
            "mean_batch_items": outcome.completed_items / outcome.batches if outcome.batches else 0.0,
            "duration_s": duration,
            "items_per_second": outcome.completed_items / duration if duration > 0 else 0.0,
            "backend_errors": outcome.error_count,
            "gather_s": outcome.gather_s,
            "predict_s": outcome.predict_s,
            "sut_latency_p50_ms": 1e3 * outcome.sut_latency_s(0.5),
            "sut_latency_p99_ms": 1e3 * outcome.sut_latency_s(0.99),
            "issue_gap_max_ms": 1e3 * outcome.issue_gap_max_s,
            "issue_calls": outcome.issue_calls,
            "issue_stalls": outcome.issue_stalls_ms(),
            "gc": outcome.gc.summary(),
        }
    if interrupted is not None:
        data["interrupted"] = _interruption(interrupted, outcome)
    accuracy: AccuracyReport | V6AccuracyReport | None = None
    if config.mode is Mode.ACCURACY and not errors and interrupted is None and (run_dir / ACCURACY_LOG).is_file():
        reference, source = reference_auc(config, library.dataset, settings)
        try:
            offsets, labels = _scored_pool(config, library)
            if RuleSet.load(settings.rules).accuracy_metrics:  # MLPerf v6.0: NE, accuracy, group AUC
                from suite import mlperf_v6

                accuracy = mlperf_v6.score(
                    read_accuracy_log(run_dir / ACCURACY_LOG), offsets, labels,
                    mlperf_v6.reference_for(library.dataset.meta), settings.accuracy_target,
                )
            else:
                accuracy = score_accuracy(
                    read_accuracy_log(run_dir / ACCURACY_LOG),
                    offsets,
                    labels,
                    reference,
                    settings.accuracy_target,
                    reference_source=source,
                )
        except ValueError as exc:
            errors.append(f"accuracy log does not match the dataset: {exc}")
        else:
            write_text(run_dir / "accuracy.txt", accuracy.text())
            data["accuracy"] = accuracy.to_dict()
            if accuracy.problem is not None:
                errors.append(f"AUC undefined: {accuracy.problem}")
    data["performance"] = perf
    if meter is not None:
        # samples/J from LoadGen's own throughput (its metric) over the meter's average power.
        metric = perf.get("metric") or {}
        value = metric.get("value") if metric.get("units") == "queries/s" else None
        report = meter.report().with_throughput(float(value) if isinstance(value, (int, float)) else None)
        data["power"] = report.to_dict()
        write_json(run_dir / "power.json", data["power"])
    data["loadgen_errors"] = loadgen_errors
    data["errors"] = list(errors)
    if config.mode is Mode.PERFORMANCE:
        valid = perf.get("validity") == "VALID"
    else:
        valid = accuracy is not None and accuracy.passed
    data["valid"] = bool(valid and not errors and not loadgen_errors and interrupted is None)
    if interrupted:
        data["status"] = "interrupted"
    elif errors:
        data["status"] = "failed"
    elif accuracy is not None and accuracy.status == NOT_GATED:
        data["status"] = NOT_GATED  # no reference AUC: neither valid nor a failure of the gate
    else:
        data["status"] = "valid" if data["valid"] else "invalid"
    write_json(run_dir / "result.json", data)
    return RunResult(path=run_dir, data=data, outcome=outcome)


def _scored_pool(config: RunConfig, library: QueryLibrary) -> tuple[np.ndarray, np.ndarray]:
    """The query offsets and labels the accuracy gate scores.

    A model whose sample is a request of up to K candidates (dlrm-v3) answers one score per candidate
    of the request; they are one pool of candidates for the AUC, so the labels become (candidates,
    1) and the offsets count candidates. Group AUC, NE and accuracy per user (MLPerf v6.0) hook in here.
    """
    labels = np.asarray(library.dataset.labels)
    if getattr(config.model.config, "QUERY_SIZE", None) is None:
        return library.offsets, labels
    from suite.mlperf_v6 import candidate_pool

    offsets, flat = candidate_pool(library.offsets, labels)  # jagged: a request's real candidates
    return offsets, flat.reshape(-1, 1)


def _interruption(exc: RunInterrupted, outcome: Any) -> dict[str, Any]:
    """``result.json``'s ``interrupted``: the signal, how far LoadGen got, and what was answered."""
    from suite.interrupts import signal_name

    if outcome is None:
        loadgen, seconds = "not started", None
    else:
        # "left running": LoadGen had not ended when the process left; its logs end there.
        loadgen = "left running" if exc.loadgen_running else "ended"
        seconds = (outcome.interrupted_at or outcome.finished) - outcome.started
    return {
        "signal": signal_name(exc.signum),
        "loadgen": loadgen,
        # Seconds of LoadGen's test before the signal (null: it had not started).
        "loadgen_s": seconds,
        "completed_queries": outcome.completed_queries if outcome is not None else 0,
        "completed_items": outcome.completed_items if outcome is not None else 0,
        "discarded_queries": outcome.discarded_queries if outcome is not None else 0,
    }


def _loadgen_version() -> str:
    from suite.harness import loadgen_version

    return loadgen_version()
