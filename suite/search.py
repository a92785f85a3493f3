"""The generic search of ``suite tune``: the latency-bounded throughput of a backend's setting,
from real LoadGen Server runs on one loaded backend.

The latency-bounded throughput of one setting is the highest Server target QPS whose tail latency
at the percentile stays within the SLA. :class:`Search` finds it by a bracketing search of short
LoadGen runs (grow or shrink the target by a factor until one run passes and one fails, then bisect
geometrically until they are within ``tolerance``); a reported number is then confirmed by one run
of the profile's length, stepping down 10% if it fails. Every run is a
:meth:`suite.runner.Runner.run`, so each leaves its record. Which settings to search is the
backend's walk (``Backend.tune``), which returns a :class:`TuneReport`; :mod:`suite.tune` is the
command around both.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from suite.config import Settings
from suite.errors import BackendError

if TYPE_CHECKING:
    from suite.backends.base import Backend
    from suite.datasets.library import QueryLibrary
    from suite.runner import Runner


#: A search gives up after this many growing (or shrinking) steps without a bracket.
MAX_BRACKET_STEPS = 12
#: A search stops lowering the target once a run would last longer than this many search lengths
#: (it needs its minimum query count), or once lowering it no longer lowers the tail latency by
#: this fraction: the SLA is then out of reach of the setting at any load, and its capacity is 0.
MAX_RUN_LENGTHS = 8
MIN_TAIL_GAIN = 0.1
#: ``settings.target_qps_source`` of a search or confirming run: the search chose the target.
TUNE_SOURCE = "tune"

#: A value for each tunable parameter, in the backend's ``tunable`` order: one point of the search.
Setting = tuple[tuple[str, int], ...]


@dataclass(frozen=True, kw_only=True)
class Point:
    """One LoadGen Server run of the tune, a row of ``trace.csv``."""

    run: int
    phase: str  # the backend's walk (DeepRecSched: static | batch | offload), or confirm-...
    setting: Setting
    #: The setting as the backend names it in folder names and progress lines (``B32-Q0``).
    label: str
    target_qps: float
    achieved_qps: float
    tail_latency_ms: float
    passed: bool
    loadgen_validity: str
    duration_s: float
    queries: int
    errors: str = ""

    def row(self) -> dict[str, Any]:
        """The ``trace.csv`` row: the setting's parameters as columns after ``phase``."""
        d = dataclasses.asdict(self)
        del d["setting"], d["label"]
        return {"run": d.pop("run"), "phase": d.pop("phase"), **dict(self.setting), **d}


@dataclass(frozen=True, kw_only=True)
class Capacity:
    """A setting's latency-bounded throughput."""

    setting: Setting
    qps: float
    confirmed: bool | None = None  # None: search only
    #: The searched setting whose schedule this one repeats, so its capacity is that one's.
    same_as: Setting | None = None

    def value(self, name: str) -> int:
        """The setting's value of the tunable parameter ``name``."""
        return dict(self.setting)[name]

    def to_dict(self) -> dict[str, Any]:
        """As ``tuned.json`` lists it: the parameters, ``qps``, ``confirmed`` (and ``same_as``)."""
        d: dict[str, Any] = {**dict(self.setting), "qps": self.qps, "confirmed": self.confirmed}
        if self.same_as is not None:
            d["same_as"] = [v for _, v in self.same_as]
        return d


@dataclass(frozen=True, kw_only=True)
class TuneReport:
    """What a backend's walk found (``Backend.tune``).

    Attributes:
        chosen: the setting to apply (confirmed where the walk confirmed it).
        options: the backend's options with ``chosen`` applied: what ``suite run --tuned`` applies.
        threads: the ``--threads`` they go with.
        summary: one line for the CLI (``on 2 CPU workers: tuned B=32 ... qps``).
        data: the backend's own fields of ``tuned.json`` (DeepRecSched: static, cpu_only, climb...).
        figure: writes the backend's figure (``qps.png``) from the whole ``tuned.json`` data, or None.
    """

    chosen: Capacity
    options: tuple[tuple[str, str], ...]
    threads: int
    summary: str
    data: Mapping[str, Any]
    figure: Callable[[Path, dict[str, Any]], bool] | None = None


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


def default_label(setting: Setting) -> str:
    """A setting in a folder name: ``name=value`` pairs joined by ``-``."""
    return "-".join(f"{k}={v}" for k, v in setting)


class Search:
    """The generic search a backend's walk calls: LoadGen Server points on one loaded backend
    (through its :class:`~suite.runner.Runner`), the capacity of a setting, its confirmation, the trace.

    Attributes:
        tolerance: the search's resolution (a fraction of the passing target).
        start_qps: the first target of a search with no neighbour (see :meth:`first_target`).
        label: names a setting in run folders and progress lines; a backend may set its own.
        points: every LoadGen run so far.
    """

    def __init__(self, runner: Runner, search: Settings, confirm: Settings, out: Path, *, tolerance: float,
                 start_qps: float | None = None, report: Callable[[Point], None] | None = None) -> None:
        self.runner = runner
        self.search = search
        self.confirm_settings = confirm
        self.out = out
        self.tolerance = tolerance
        self.start_qps = start_qps or 0.0
        self.report = report
        self.label: Callable[[Setting], str] = default_label
        self.points: list[Point] = []

    @property
    def backend(self) -> Backend:
        return self.runner.backend

    @property
    def query_sizes(self) -> list[int]:
        """The distinct query sizes (items) of the run's queries, ascending."""
        return sorted(set(self.runner.library.size_list))

    def first_target(self, setting: Setting) -> float:
        """The first target of a search with no neighbour: ``--start-qps``, else 0.8 x ``setting``'s
        closed-loop QPS (only a starting point, which keeps the first runs from overloading the
        system: an overloaded Server run lasts until its backlog drains). Measured once."""
        if not self.start_qps:
            self.backend.retune(**dict(setting))
            seconds = min(2.0, self.search.min_duration_ms / 1000)
            self.start_qps = 0.8 * closed_loop_qps(self.backend, self.runner.library, seconds)
        return self.start_qps

    def run(self, phase: str, setting: Setting, qps: float, settings: Settings) -> Point:
        """One LoadGen Server run of ``setting`` at ``qps`` into ``runs/NNN-<phase>-<label>``."""
        from suite.results import DETAIL, read_detail

        self.backend.retune(**dict(setting))
        n = len(self.points) + 1
        label = self.label(setting)
        outdir = self.out / "runs" / f"{n:03d}-{phase}-{label}"
        fixed = tuple((k, v) for k, v in self.runner.config.backend_options if k not in dict(setting))
        config = dataclasses.replace(self.runner.config, backend_options=fixed + tuple((k, str(v)) for k, v in setting),
                                     target_qps=qps)
        t0 = time.perf_counter()
        result = self.runner.run(config, settings=dataclasses.replace(settings, target_qps=qps), run_dir=outdir,
                                 check=False)
        outcome = result.outcome
        detail = read_detail(outdir / DETAIL)
        key = f"result_{settings.target_latency_percentile * 100:.2f}_percentile_latency_ns"
        tail_ns = float(detail.get(key) or math.inf)
        failed = (outcome.errors[:1] if outcome is not None else ["LoadGen did not run"]) + detail.errors[:1]
        errors = "; ".join(failed)
        point = Point(
            run=n,
            phase=phase,
            setting=setting,
            label=label,
            target_qps=qps,
            achieved_qps=float(detail.get("result_completed_samples_per_sec") or 0.0),
            tail_latency_ms=tail_ns / 1e6,
            passed=not errors and tail_ns <= settings.target_latency_ns,
            loadgen_validity=str(detail.get("result_validity")),
            duration_s=time.perf_counter() - t0,
            queries=outcome.completed_queries if outcome is not None else 0,
            errors=errors,
        )
        self.points.append(point)
        if self.report is not None:
            self.report(point)
        if outcome is None or outcome.error_count:
            raise BackendError(f"tune stopped: the backend failed in run {n}: {failed[0]}")
        return point

    def search_qps(self, phase: str, setting: Setting, start: float, factor: float) -> float:
        """The highest passing target: bracket from ``start`` by ``factor``, then bisect to ``tolerance``."""
        def passes(q: float) -> bool:
            return self.run(phase, setting, q, self.search).passed

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
            if passes(mid):
                lo = mid
            else:
                hi = mid
        return lo

    def confirm(self, phase: str, found: Capacity, attempts: int = 4) -> Capacity:
        """One run of the confirming length at the found QPS; 10% lower on failure, up to ``attempts`` runs."""
        q = found.qps
        for _ in range(attempts):
            if q <= 0:
                break
            if self.run(phase, found.setting, q, self.confirm_settings).passed:
                return dataclasses.replace(found, qps=q, confirmed=True)
            q *= 0.9
        return dataclasses.replace(found, qps=q, confirmed=False)

    def write_trace(self) -> None:
        """``trace.csv``: every LoadGen run so far, one row each."""
        rows = [p.row() for p in self.points]
        names = [k for k, _ in self.points[0].setting] if self.points else list(self.backend.tunable)
        fields = ["run", "phase", *names, *(f.name for f in dataclasses.fields(Point) if f.name not in
                                          ("run", "phase", "setting", "label"))]
        with (self.out / "trace.csv").open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
