"""``suite tune``: a backend's tunable setting searched with real LoadGen Server runs.

The engine knows two things here, and nothing of any one backend:

- **the search** (:class:`suite.search.Search`): the latency-bounded throughput of one setting,
  found by a bracketing search of short LoadGen Server runs and confirmed by one of the profile's
  length. Every run is a :meth:`suite.runner.Runner.run` on one loaded backend, so each leaves its
  record (``config.json``, LoadGen's logs, ``result.json``) in ``runs/``.
- **the capability**: a backend that declares :attr:`~suite.backends.base.Backend.tunable`
  parameters sets them between runs (``retune``) and walks them itself (``Backend.tune``, handed
  the :class:`Search`): the policy and its tuner live with the scheduler (DeepRecSched's climb over
  B and Q is ``suite.backends.deeprecsched.tune``). It returns a :class:`~suite.search.TuneReport`.

Output, in ``<output>/<system>/<model>/tune/``: ``tuned.json`` (the chosen setting, loadable by
``suite run --backend NAME --tuned FILE``, with the backend's report), ``trace.csv`` (every LoadGen
run), the backend's figure (DeepRecSched: ``qps.png``) and ``runs/`` (one run folder per point).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from suite.config import PROFILES, RunConfig, Scenario
from suite.errors import ConfigError, SuiteError, one_of
from suite.models import ModelSpec
from suite.search import TUNE_SOURCE, Point, Search

if TYPE_CHECKING:
    from suite.backends.base import Tunable


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


def tune_flags() -> dict[str, list[tuple[str, Tunable]]]:
    """Every ``suite tune`` option a tunable backend declares (:class:`~suite.backends.base.Tunable`'s
    ``flag``), with the (backend, parameter) pairs that declare it: the CLI adds these options."""
    from suite.backends import get_backend

    flags: dict[str, list[tuple[str, Tunable]]] = {}
    for name in tunable_backends():
        for parameter in get_backend(name).tunable.values():
            flags.setdefault(parameter.flag, []).append((name, parameter))
    return flags


def parse_walks(backend: str, given: Mapping[str, str]) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """The walks of a tune of ``backend`` from its options as given (``{"batch-sizes": "32,64"}``):
    (parameter, values) for each parameter whose flag was given; the others walk their defaults.

    Raises:
        ConfigError: ``backend`` declares no tunable parameters, a flag is not one of its, or a
            value is malformed or out of range.
    """
    from suite.backends import get_backend

    one_of("backend", backend, tunable_backends())
    declared = get_backend(backend).tunable
    flags = {t.flag: name for name, t in declared.items()}
    for flag in given:
        if flag not in flags:
            raise ConfigError(f"'{flag}' is not a tune option of backend {backend!r} (its: {sorted(flags)})")
    return tuple((name, t.parse(given[t.flag])) for name, t in declared.items() if t.flag in given)


PERCENTILES = (95.0, 99.0)
#: Search-run length by profile, and the queries each search run needs at least.
SEARCH_MS = {"smoke": 1000, "short": 4000, "official": 10000}
SEARCH_QUERIES = 100
TUNED_FORMAT = 1


@dataclass(frozen=True, kw_only=True)
class TuneConfig:
    """Everything ``suite tune`` was asked to do.

    Attributes:
        model: the model's weights.
        backend: the backend to tune: one that declares ``tunable`` parameters.
        sla_ms: the tail-latency bound in ms; None takes the rule table's Server target.
        percentile: the tail percentile, 95 or 99; None takes the rule table's.
        profile: run lengths: search runs of ``SEARCH_MS[profile]``, confirming runs of the
            profile's Server duration and query count.
        threads: ``--threads``: the backend's CPU parallelism (0: its policy).
        backend_options: the backend's ``--option`` pairs, kept fixed (none of them tunable).
        walks: the values the search walks, in order, per tunable parameter (each set by the
            ``suite tune`` option the backend declares for it, :func:`parse_walks`); a parameter
            left out walks the backend's default.
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
    walks: tuple[tuple[str, tuple[int, ...]], ...] = ()
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
        for name in ("search_ms", "confirm_ms"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"'{name.replace('_ms', '-seconds').replace('_', '-')}' must be > 0 (got {value / 1000!r})")
        if self.start_qps is not None and not self.start_qps > 0:
            raise ConfigError(f"'start-qps' must be > 0 (got {self.start_qps!r})")
        if not 0 < self.tolerance < 1:
            raise ConfigError(f"'tolerance' must be in (0, 1) (got {self.tolerance!r})")
        from suite.backends import get_backend

        backend_cls = get_backend(self.backend)
        keys = {k for k, _ in self.backend_options}
        for fixed in backend_cls.tunable:
            if fixed in keys:
                raise ConfigError(f"'option' {fixed} is what tune searches; leave it out (got {fixed}=...)")
        backend_cls.check_walks(dict(self.walks))

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
class TuneResult:
    """What ``suite tune`` found, as written to ``tuned.json``."""

    path: Path
    data: dict[str, Any]
    points: tuple[Point, ...]
    summary: str


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
    """Search ``config.backend``'s tunable setting (the backend walks it) and write the tune folder.

    Args:
        report: called with every LoadGen run as it finishes (the CLI prints them).

    Raises:
        BackendError: the backend failed (a worker died, say); points so far are kept in trace.csv.
    """
    from suite.results import write_json
    from suite.runner import Runner, environment, prepare_run_dir

    run_config = config.run_config()
    runner = Runner(run_config)  # every input checked, the backend built (not loaded)
    try:
        base = runner.settings
        sla_ms = config.sla_ms if config.sla_ms is not None else base.target_latency_ns / 1e6
        percentile = config.percentile if config.percentile is not None else round(base.target_latency_percentile * 100, 2)
        one_of("percentile", f"{percentile:g}", [f"{p:g}" for p in PERCENTILES])
        search_settings = dataclasses.replace(
            base,
            target_latency_ns=int(sla_ms * 1e6),
            target_latency_percentile=percentile / 100,
            min_duration_ms=config.search_ms or SEARCH_MS[config.profile],
            min_query_count=min(SEARCH_QUERIES, base.min_query_count),
            target_qps_source=TUNE_SOURCE,
        )
        confirm_settings = dataclasses.replace(search_settings, min_duration_ms=config.confirm_ms or base.min_duration_ms,
                                               min_query_count=base.min_query_count)
        runner.library  # noqa: B018 - the dataset loads (or is made) before the tune folder is
        out = config.tune_dir()
        prepare_run_dir(out, config.overwrite)
        started = dt.datetime.now(dt.UTC)
        search = Search(runner, search_settings, confirm_settings, out, tolerance=config.tolerance,
                        start_qps=config.start_qps, report=report)
        try:
            runner.load()
            found = runner.backend.tune(search, dict(config.walks))
            runner.backend.retune(**dict(found.chosen.setting))
            info = runner.backend.info().to_dict()
        except SuiteError:
            search.write_trace()
            raise
    finally:
        runner.close()
    data: dict[str, Any] = {
        "format": TUNED_FORMAT,
        "model": config.model.to_dict(),
        "backend": config.backend,
        "precision": config.precision,
        "threads": found.threads,
        "options": dict(found.options),
        "sla_ms": sla_ms,
        "percentile": percentile,
        "profile": config.profile,
        "query_size": base.query_size,
        "search_ms": search_settings.min_duration_ms,
        "confirm_ms": confirm_settings.min_duration_ms,
        **found.data,
        "backend_info": info,
        "environment": environment(),
        "started": started.isoformat(),
        "finished": dt.datetime.now(dt.UTC).isoformat(),
        "runs": len(search.points),
    }
    write_json(out / "tuned.json", data)
    search.write_trace()
    if found.figure is not None:
        found.figure(out, data)
    return TuneResult(path=out, data=data, points=tuple(search.points), summary=found.summary)


