"""``suite tune``: DeepRecSched's hill climb, every point measured with real LoadGen Server runs.

The latency-bounded throughput of one setting is the highest Server target QPS whose tail latency
at the percentile stays within the SLA. It is found by a bracketing search of short LoadGen runs
(grow or shrink the target by a factor until one run passes and one fails, then bisect
geometrically until they are within ``tolerance``); a reported number is then confirmed by one run
of the profile's length, stepping down 10% if it fails.

The climb is the one DeepRecSys runs (``shared/reference/deeprecsys.md`` 3): phase 1 walks the
per-request batch sizes B with offload off and stops at the first B that sustains less than the one
before it (else takes the best of the list), then keeps the static setting if that did better;
phase 2, with an accelerator, walks the offload thresholds Q with that B, starting from the
phase-1 winner (no offload), and stops the same way.
"Less" means by more than the search's resolution, and a setting that schedules every query of the
run as an already searched one does is not searched again (see ``_Tuner.climb``).
The static baseline (each query as one request, no offload) is measured in the same run on the same
worker pool.

Output, in ``<output>/<system>/<model>/tune/``: ``tuned.json`` (the chosen setting, loadable by
``suite run --backend deeprecsched --tuned FILE``, with the static baseline and the ratio),
``trace.csv`` (every LoadGen run), ``qps.png`` (QPS against B and Q) and ``runs/`` (LoadGen's logs).

Size: this module is over 450 lines because the search, its confirmation runs and the report are one algorithm; it moves beside the scheduler (issue 13).
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from suite.config import PROFILES, RunConfig, Scenario, Settings, resolve
from suite.errors import BackendError, ConfigError, SuiteError, one_of
from suite.models import ModelSpec

if TYPE_CHECKING:
    from suite.backends.base import Backend
    from suite.backends.deeprecsched import DeepRecSchedBackend
    from suite.datasets.library import QueryLibrary



def tunable_backends() -> tuple[str, ...]:
    """The registered backends that declare :attr:`~suite.backends.base.Backend.tunable`
    parameters (and can be imported here): the ones ``suite tune`` accepts."""
    from suite.backends import REGISTRY, get_backend

    names = []
    for name in REGISTRY:
        try:
            if get_backend(name).tunable:
                names.append(name)
        except SuiteError:
            continue  # not installed here: not offered
    return tuple(names)


PERCENTILES = (95.0, 99.0)
#: DeepRecSys's default batch-size list (utils ``32-64-128-256-512-1024``), walked upward.
BATCH_SIZES = (32, 64, 128, 256, 512, 1024)
#: Offload thresholds, walked downward from little offload to much ("lower Q until QPS stops improving").
THRESHOLDS = (512, 384, 256, 192, 128, 96, 64, 32, 1)
#: Search-run length by profile, and the queries each search run needs at least.
SEARCH_MS = {"smoke": 1000, "short": 4000, "official": 10000}
SEARCH_QUERIES = 100
#: A search gives up after this many growing (or shrinking) steps without a bracket.
MAX_BRACKET_STEPS = 12
#: A search stops lowering the target once a run would last longer than this many search lengths
#: (it needs its minimum query count), or once lowering it no longer lowers the tail latency by
#: this fraction: the SLA is then out of reach of the setting at any load, and its capacity is 0.
MAX_RUN_LENGTHS = 8
MIN_TAIL_GAIN = 0.1
TUNED_FORMAT = 1


@dataclass(frozen=True, kw_only=True)
class TuneConfig:
    """Everything ``suite tune`` was asked to do.

    Attributes:
        model: the model's weights.
        backend: the backend to tune; only ``deeprecsched`` is tunable.
        sla_ms: the tail-latency bound in ms; None takes the rule table's Server target.
        percentile: the tail percentile, 95 or 99; None takes the rule table's.
        profile: run lengths: search runs of ``SEARCH_MS[profile]``, confirming runs of the
            profile's Server duration and query count.
        threads: CPU workers (0: one per core).
        backend_options: fixed scheduler options (cpu_backend, accelerator, pool, pin).
        batch_sizes, thresholds: the B and Q lists the climb walks, in order.
        search_ms, confirm_ms: override the search and confirming run lengths.
        start_qps: the first target; None estimates it from a closed-loop measurement.
        tolerance: the search stops when the failing target is within this fraction of the passing one.
        output, system, overwrite: where the tune folder goes (``output/system/model/tune``).
    """

    model: ModelSpec
    backend: str = "deeprecsched"
    sla_ms: float | None = None
    percentile: float | None = None
    profile: str = "short"
    threads: int = 0
    precision: str = "fp32"
    backend_options: tuple[tuple[str, str], ...] = ()
    batch_sizes: tuple[int, ...] = BATCH_SIZES
    thresholds: tuple[int, ...] = THRESHOLDS
    search_ms: int | None = None
    confirm_ms: int | None = None
    start_qps: float | None = None
    tolerance: float = 0.1
    query_size: str | None = None
    rows: int | None = None
    data_dir: Path | None = None
    output: Path = Path("results")
    system: str | None = None
    overwrite: bool = False

    def __post_init__(self) -> None:
        one_of("backend", self.backend, tunable_backends())
        one_of("profile", self.profile, PROFILES)
        if self.sla_ms is not None and not self.sla_ms > 0:
            raise ConfigError(f"'sla-ms' must be > 0 (got {self.sla_ms!r})")
        if self.percentile is not None and self.percentile not in PERCENTILES:
            raise ConfigError(f"'percentile' must be one of [95, 99] (got {self.percentile!r})")
        if not self.batch_sizes or any(b < 0 for b in self.batch_sizes):
            raise ConfigError(f"'batch-sizes' must be a non-empty list of sizes >= 0 (got {list(self.batch_sizes)!r})")
        if any(q < 1 for q in self.thresholds):
            raise ConfigError(f"'thresholds' must be sizes >= 1 (got {list(self.thresholds)!r})")
        for name in ("search_ms", "confirm_ms"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"'{name.replace('_ms', '-seconds').replace('_', '-')}' must be > 0 (got {value / 1000!r})")
        if self.start_qps is not None and not self.start_qps > 0:
            raise ConfigError(f"'start-qps' must be > 0 (got {self.start_qps!r})")
        if not 0 < self.tolerance < 1:
            raise ConfigError(f"'tolerance' must be in (0, 1) (got {self.tolerance!r})")
        keys = {k for k, _ in self.backend_options}
        for fixed in ("batch_items", "offload_items"):
            if fixed in keys:
                raise ConfigError(f"'option' {fixed} is what tune searches; leave it out (got {fixed}=...)")

    def run_config(self) -> RunConfig:
        """The Server run every point is a variant of."""
        return RunConfig(
            model=self.model,
            backend=self.backend,
            scenario=Scenario.SERVER,
            profile=self.profile,
            query_size=self.query_size,
            rows=self.rows,
            data_dir=self.data_dir,
            output=self.output,
            system=self.system,
            threads=self.threads,
            precision=self.precision,
            backend_options=self.backend_options,
            progress=False,
        )

    def tune_dir(self) -> Path:
        config = self.run_config()
        return self.output / config.system_name / self.model.name / "tune"


@dataclass(frozen=True, kw_only=True)
class Point:
    """One LoadGen Server run of the tune, a row of ``trace.csv``."""

    run: int
    phase: str  # static | batch | offload | confirm-static | confirm-cpu | confirm-tuned
    batch_items: int
    offload_items: int
    target_qps: float
    achieved_qps: float
    tail_latency_ms: float
    passed: bool
    loadgen_validity: str
    duration_s: float
    queries: int
    errors: str = ""


@dataclass(frozen=True, kw_only=True)
class Capacity:
    """A setting's latency-bounded throughput."""

    batch_items: int
    offload_items: int
    qps: float
    confirmed: bool | None = None  # None: search only
    #: (B, Q) of the searched setting whose schedule this one repeats, so its capacity is that one's.
    same_as: tuple[int, int] | None = None


@dataclass(frozen=True, kw_only=True)
class TuneResult:
    """What ``suite tune`` found, as written to ``tuned.json``."""

    path: Path
    data: dict[str, Any]
    points: tuple[Point, ...]


@dataclass(frozen=True, kw_only=True)
class TunedSetting:
    """A ``tuned.json`` read back for ``suite run --tuned``.

    What a mismatch with the run does, per field: another backend or model is refused (exit 2: the
    scheduler's B and Q are sizes of that model's queries on that backend, meaningless elsewhere);
    another scale, task count or precision warns (one line on stderr, recorded in ``config.json``
    and ``result.json`` under ``tuned``): the setting still runs, but was measured on other tables
    or arithmetic, so it may not be the best here. Seed and weights do not change a run's speed and
    are not compared.
    """

    path: Path
    model: str
    backend: str
    threads: int
    options: tuple[tuple[str, str], ...]
    scale: str | None = None
    tasks: int | None = None
    #: None for a tuned.json written before the precision was recorded.
    precision: str | None = None

    def apply(self, config: RunConfig) -> RunConfig:
        """``config`` with this setting's options and workers; options given explicitly win."""
        if config.backend != self.backend:
            raise ConfigError(f"'tuned' file {str(self.path)!r} is a {self.backend} setting (got --backend {config.backend})")
        if config.model.name != self.model:
            raise ConfigError(f"'tuned' file {str(self.path)!r} was tuned for {self.model} (got --model {config.model.name})")
        explicit = dict(config.backend_options)
        merged = tuple((k, explicit.pop(k, v)) for k, v in self.options) + tuple(explicit.items())
        return dataclasses.replace(config, backend_options=merged, threads=config.threads or self.threads)

    def warning(self, config: RunConfig) -> str | None:
        """One line naming every field the run differs in (scale, tasks, precision), or None."""
        differ = [
            f"{what} {tuned} (this run: {ours})"
            for what, tuned, ours in (
                ("scale", self.scale, config.model.scale),
                ("tasks", self.tasks, config.model.task_count),
                ("precision", self.precision, config.precision),
            )
            if tuned is not None and tuned != ours
        ]
        if not differ:
            return None
        return f"'tuned' file {str(self.path)!r} was tuned at {', '.join(differ)}: its setting may not be the best here"

    def to_dict(self, config: RunConfig) -> dict[str, Any]:
        """What a run records of the file it applied."""
        return {"path": str(self.path), "options": dict(self.options), "threads": self.threads,
                "scale": self.scale, "tasks": self.tasks, "precision": self.precision,
                "warning": self.warning(config)}  # fmt: skip


def load_tuned(path: Path) -> TunedSetting:
    """Read a ``tuned.json`` written by :func:`tune`."""
    from suite import record
    from suite.errors import RecordError

    try:
        data = record.read_object(path)
        model = data["model"]
        return TunedSetting(
            path=path,
            model=str(model["name"]),
            backend=str(data["backend"]),
            threads=int(data["threads"]),
            options=tuple((str(k), str(v)) for k, v in data["options"].items()),
            scale=str(model["scale"]),
            tasks=int(model["tasks"]),
            precision=str(data["precision"]) if "precision" in data else None,
        )
    except RecordError as exc:
        raise ConfigError(f"'tuned' file {str(path)!r} {exc.problems[0][1]}") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"'tuned' file {str(path)!r} is not a tuned setting ({type(exc).__name__}: {exc})") from None


def tune(config: TuneConfig, *, report: Callable[[Point], None] | None = None) -> TuneResult:
    """Climb DeepRecSched's B (and, with an accelerator, Q) for ``config`` and write the tune folder.

    Args:
        report: called with every LoadGen run as it finishes (the CLI prints them).

    Raises:
        BackendError: the backend failed (a worker died, say); points so far are kept in trace.csv.
    """
    from suite.backends import BackendConfig, get_backend
    from suite.models.weights import verify as verify_weights
    from suite.runner import environment, load_library, prepare_run_dir

    verify_weights(config.model)
    run_config = config.run_config()
    base = resolve(run_config)
    sla_ms = config.sla_ms if config.sla_ms is not None else base.target_latency_ns / 1e6
    percentile = config.percentile if config.percentile is not None else round(base.target_latency_percentile * 100, 2)
    one_of("percentile", f"{percentile:g}", [f"{p:g}" for p in PERCENTILES])
    search = dataclasses.replace(
        base,
        target_latency_ns=int(sla_ms * 1e6),
        target_latency_percentile=percentile / 100,
        min_duration_ms=config.search_ms or SEARCH_MS[config.profile],
        min_query_count=min(SEARCH_QUERIES, base.min_query_count),
    )
    confirm = dataclasses.replace(search, min_duration_ms=config.confirm_ms or base.min_duration_ms,
                                  min_query_count=base.min_query_count)
    library = load_library(run_config, base)
    backend: DeepRecSchedBackend = get_backend(config.backend)(
        BackendConfig(model=config.model, threads=config.threads, precision=config.precision,
                      options=config.backend_options)
    )
    out = config.tune_dir()
    prepare_run_dir(out, config.overwrite)
    started = dt.datetime.now(dt.UTC)
    tuner = _Tuner(library, backend, search, confirm, out, config.tolerance, report)
    try:
        backend.load()
        has_accelerator = backend.sched.accelerator != "none"
        tuner.start_qps = config.start_qps or 0.8 * tuner.closed_loop_qps(seconds=min(2.0, search.min_duration_ms / 1000))
        static = tuner.capacity("static", 0, 0, tuner.start_qps, factor=2.0)
        # Phase 1: B with offload off.
        phase1 = tuner.climb("batch", [(b, 0) for b in config.batch_sizes], static.qps)
        # The whole query (B = 0) is a setting too: the tune never settles below the baseline it
        # measured, and takes it on a tie (the walk's best may be B beyond every query: static again).
        cpu_best = phase1 if phase1.qps > static.qps else static
        # Phase 2: Q with the best B, from the phase-1 winner (no offload).
        if has_accelerator:
            final = tuner.climb("offload", [(cpu_best.batch_items, q) for q in config.thresholds], cpu_best.qps,
                                first=cpu_best)
        else:
            final = cpu_best
        static_c = tuner.confirm("confirm-static", static)
        cpu_c = static_c if cpu_best is static else tuner.confirm("confirm-cpu", cpu_best)
        final_c = tuner.confirm("confirm-tuned", final) if final != cpu_best else cpu_c
        cpu_c, final_c, rejected = never_below(static_c, cpu_c, final_c)
        backend.retune(batch_items=final_c.batch_items, offload_items=final_c.offload_items)
        info = backend.info().to_dict()
    except SuiteError:
        tuner.write_trace()
        raise
    finally:
        backend.close()
    sched = backend.sched
    data: dict[str, Any] = {
        "format": TUNED_FORMAT,
        "model": config.model.to_dict(),
        "backend": config.backend,
        "precision": config.precision,
        "threads": sched.cpu_workers,
        "options": dict(sched.options()),
        "sla_ms": sla_ms,
        "percentile": percentile,
        "profile": config.profile,
        "query_size": base.query_size,
        "search_ms": search.min_duration_ms,
        "confirm_ms": confirm.min_duration_ms,
        "tuned": _capacity_dict(final_c),
        "cpu_only": _capacity_dict(cpu_c),
        "static": _capacity_dict(static_c),
        # Settings the search preferred whose confirming runs held less than the one they would
        # replace (static, or the CPU-only winner): reported, never chosen.
        "rejected": [_capacity_dict(c) for c in rejected],
        "speedup_vs_static": final_c.qps / static_c.qps if static_c.qps else None,
        "cpu_speedup_vs_static": cpu_c.qps / static_c.qps if static_c.qps else None,
        "climb": {
            "batch": [_capacity_dict(c) for phase, c in tuner.settled if phase == "batch"],
            "offload": [_capacity_dict(c) for phase, c in tuner.settled if phase == "offload"],
        },
        "backend_info": info,
        "environment": environment(),
        "started": started.isoformat(),
        "finished": dt.datetime.now(dt.UTC).isoformat(),
        "runs": len(tuner.points),
    }
    from suite.results import write_json

    write_json(out / "tuned.json", data)
    tuner.write_trace()
    plot(out / "qps.png", data, config.model.name)
    return TuneResult(path=out, data=data, points=tuple(tuner.points))


def never_below(static: Capacity, cpu: Capacity, final: Capacity) -> tuple[Capacity, Capacity, list[Capacity]]:
    """The confirmed (CPU-only, tuned) settings, each replaced by the one it was meant to beat when
    its confirming runs held less: the search (short runs) can prefer a setting that the confirming
    runs (the profile's length) then find slower, and a tune must never recommend a setting below
    the static baseline it measured. Returns (cpu, final, the rejected settings)."""
    rejected = []
    if cpu.qps < static.qps:
        rejected.append(cpu)
        cpu = static
    if final is not cpu and final.qps < cpu.qps:
        if final not in rejected:
            rejected.append(final)
        final = cpu
    return cpu, final, rejected


def closed_loop_qps(backend: Backend, library: QueryLibrary, seconds: float) -> float:
    """Queries per second with ``backend.queries_in_flight()`` threads (at least one) feeding the
    backend one query after another, without LoadGen: a throughput ceiling, not a latency-bounded
    number.

    Raises:
        BackendError: a predict call failed.
    """
    backend.attach_items(library.items)
    threads = max(1, backend.queries_in_flight())
    n = len(library)
    done = [0] * threads
    errors: list[str] = []
    deadline = time.perf_counter() + seconds

    def work(t: int) -> None:
        i = t
        try:
            while time.perf_counter() < deadline:
                backend.predict(library.gather([i % n]))
                done[t] += 1
                i += threads
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")

    t0 = time.perf_counter()
    workers = [threading.Thread(target=work, args=(t,), daemon=True) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if errors:
        raise BackendError(f"closed-loop run failed: {errors[0]}")
    return max(sum(done) / (time.perf_counter() - t0), 1.0)


def _capacity_dict(c: Capacity) -> dict[str, Any]:
    d: dict[str, Any] = {"batch_items": c.batch_items, "offload_items": c.offload_items, "qps": c.qps, "confirmed": c.confirmed}
    if c.same_as is not None:
        d["same_as"] = list(c.same_as)
    return d


class _Tuner:
    """Runs LoadGen points on one loaded backend and keeps the trace."""

    def __init__(self, library: QueryLibrary, backend: DeepRecSchedBackend, search: Settings, confirm: Settings,
                 out: Path, tolerance: float, report: Callable[[Point], None] | None) -> None:
        self.library = library
        self.backend = backend
        self.search = search
        self.confirm_settings = confirm
        self.out = out
        self.tolerance = tolerance
        self.report = report
        self.points: list[Point] = []
        #: The first target of a search with no neighbour to start from.
        self.start_qps = 1.0
        #: Every setting of the climb with its phase, in order.
        self.settled: list[tuple[str, Capacity]] = []
        #: The first searched capacity of each distinct schedule (see ``schedule``).
        self.searched: dict[tuple[tuple[int, ...], ...], Capacity] = {}
        self.sizes = sorted(set(library.size_list))

    def closed_loop_qps(self, seconds: float) -> float:
        """The static setting's closed-loop QPS: only a starting point for the search, which keeps
        its first runs from overloading the system (an overloaded Server run lasts until its backlog
        drains)."""
        self.backend.retune(batch_items=0, offload_items=0)
        return closed_loop_qps(self.backend, self.library, seconds)

    def run(self, phase: str, batch_items: int, offload_items: int, qps: float, settings: Settings) -> Point:
        from suite import harness
        from suite.results import read_detail

        self.backend.retune(batch_items=batch_items, offload_items=offload_items)
        n = len(self.points) + 1
        outdir = self.out / "runs" / f"{n:03d}-{phase}-B{batch_items}-Q{offload_items}"
        outdir.mkdir(parents=True)
        t0 = time.perf_counter()
        outcome = harness.run(self.library, self.backend, dataclasses.replace(settings, target_qps=qps), outdir,
                              progress=False)
        detail = read_detail(outdir / "mlperf_log_detail.txt")
        key = f"result_{settings.target_latency_percentile * 100:.2f}_percentile_latency_ns"
        tail_ns = float(detail.get(key) or math.inf)
        errors = "; ".join(outcome.errors[:1] + detail.errors[:1])
        point = Point(
            run=n,
            phase=phase,
            batch_items=batch_items,
            offload_items=offload_items,
            target_qps=qps,
            achieved_qps=float(detail.get("result_completed_samples_per_sec") or 0.0),
            tail_latency_ms=tail_ns / 1e6,
            passed=not errors and tail_ns <= settings.target_latency_ns,
            loadgen_validity=str(detail.get("result_validity")),
            duration_s=time.perf_counter() - t0,
            queries=outcome.completed_queries,
            errors=errors,
        )
        self.points.append(point)
        if self.report is not None:
            self.report(point)
        if outcome.error_count:
            raise BackendError(f"tune stopped: the backend failed in run {n}: {outcome.errors[0]}")
        return point

    def capacity(self, phase: str, batch_items: int, offload_items: int, start: float, factor: float) -> Capacity:
        """Search a setting's capacity and remember it (``settled``, and ``searched`` by schedule)."""
        found = Capacity(batch_items=batch_items, offload_items=offload_items,
                         qps=self.search_qps(phase, batch_items, offload_items, start, factor))
        self.settled.append((phase, found))
        self.searched.setdefault(self.schedule(batch_items, offload_items), found)
        return found

    def search_qps(self, phase: str, batch_items: int, offload_items: int, start: float, factor: float) -> float:
        """The highest passing target: bracket from ``start`` by ``factor``, then bisect to ``tolerance``."""
        def passes(q: float) -> bool:
            return self.run(phase, batch_items, offload_items, q, self.search).passed

        search = self.search
        floor = search.min_query_count / (MAX_RUN_LENGTHS * search.min_duration_ms / 1000)
        lo, hi = 0.0, math.inf
        if passes(start):
            lo = start
            for _ in range(MAX_BRACKET_STEPS):
                if not passes(lo * factor):
                    hi = lo * factor
                    break
                lo *= factor
        else:
            hi = start
            tail = self.points[-1].tail_latency_ms
            for _ in range(MAX_BRACKET_STEPS):
                if hi / factor < floor:
                    break
                if passes(hi / factor):
                    lo = hi / factor
                    break
                hi /= factor
                previous, tail = tail, self.points[-1].tail_latency_ms
                if tail > (1 - MIN_TAIL_GAIN) * previous:
                    break
        while lo and hi != math.inf and hi / lo > 1 + self.tolerance:
            mid = math.sqrt(lo * hi)
            if self.run(phase, batch_items, offload_items, mid, self.search).passed:
                lo = mid
            else:
                hi = mid
        return lo

    def climb(self, phase: str, settings: list[tuple[int, int]], prior_qps: float,
              first: Capacity | None = None) -> Capacity:
        """DeepRecSys's outer loop: walk ``settings`` in order, stop at the first that does worse than
        the one before it and keep the best so far; after the whole list, the best.

        "Worse" means lower by more than the search's resolution (``tolerance``): two searches of one
        setting can differ by that much, and a stop on such a difference ends the walk on noise.
        A setting that schedules every query of the run as an already searched one does (B and Q
        beyond the largest query, say) is not searched again: it takes that one's capacity.
        ``first`` is an already measured setting the walk starts from (phase 2 starts from phase 1's
        winner, so offloading is kept only where it helps).
        """
        tried: list[Capacity] = [first] if first is not None else []
        prior = prior_qps
        for b, q in settings:
            same = self.searched.get(self.schedule(b, q))
            if same is not None:
                found = dataclasses.replace(same, batch_items=b, offload_items=q, same_as=(same.batch_items,
                                                                                           same.offload_items))
                self.settled.append((phase, found))
            else:
                found = self.capacity(phase, b, q, start=prior or self.start_qps, factor=1.25 if prior else 2.0)
            if tried and found.qps * (1 + self.tolerance) < tried[-1].qps:
                break
            tried.append(found)
            prior = found.qps
        return max(tried, key=lambda c: c.qps)  # the first of equals

    def schedule(self, batch_items: int, offload_items: int) -> tuple[tuple[int, ...], ...]:
        """How (B, Q) routes each query size of the run: equal schedules are one setting."""
        sched = dataclasses.replace(self.backend.sched, batch_items=batch_items, offload_items=offload_items)
        return tuple(sched.route(k) for k in self.sizes)

    def confirm(self, phase: str, found: Capacity, attempts: int = 4) -> Capacity:
        """One run of the confirming length at the found QPS; 10% lower on failure, up to ``attempts`` runs."""
        q = found.qps
        for _ in range(attempts):
            if q <= 0:
                break
            if self.run(phase, found.batch_items, found.offload_items, q, self.confirm_settings).passed:
                return dataclasses.replace(found, qps=q, confirmed=True)
            q *= 0.9
        return dataclasses.replace(found, qps=q, confirmed=False)

    def write_trace(self) -> None:
        fields = [f.name for f in dataclasses.fields(Point)]
        with (self.out / "trace.csv").open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=fields)
            writer.writeheader()
            for p in self.points:
                writer.writerow(dataclasses.asdict(p))


def plot(path: Path, data: dict[str, Any], model: str) -> bool:
    """QPS against B (phase 1) and Q (phase 2), static dashed; False if matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    climb = data["climb"]
    panels = [("batch", "per-request batch size B (items)", "batch_items")]
    if climb["offload"]:
        panels.append(("offload", "offload threshold Q (items)", "offload_items"))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), squeeze=False)
    for ax, (phase, label, key) in zip(axes[0], panels, strict=False):
        points = climb[phase]
        xs = [p[key] if p[key] else (1024 if key == "batch_items" else 2048) for p in points]
        ax.plot(xs, [p["qps"] for p in points], marker="o")
        ax.axhline(data["static"]["qps"], linestyle="--", color="grey", label="static (whole query, no offload)")
        chosen = data["tuned"] if phase == "offload" or not climb["offload"] else data["cpu_only"]
        ax.axhline(chosen["qps"], linestyle=":", color="green", label="chosen (confirmed)")
        ax.set_xscale("log", base=2)
        ax.set_xlabel(label)
        ax.set_ylabel("latency-bounded QPS")
        ax.set_title(f"{model}: p{data['percentile']:g} <= {data['sla_ms']:g} ms")
        ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True
