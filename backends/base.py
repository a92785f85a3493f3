"""The backend contract: load a model, predict scores for a batch, describe itself, close.

Backends exchange numpy arrays with the harness, so neither the harness nor the CLI import torch
or onnxruntime; each backend module imports its framework at the top and is itself imported only
when chosen (see ``suite.backends.REGISTRY``).
"""

from __future__ import annotations

import abc
import ctypes
import os
import platform
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from suite.config import Scenario
from suite.datasets.batch import Batch
from suite.errors import ConfigError, one_of
from suite.inputs import MAX_THREADS, parse_int
from suite.models import ModelSpec

if TYPE_CHECKING:
    from suite.search import Search, TuneReport

PRECISIONS = ("fp32", "tf32", "bf16", "fp16", "fp8", "int8")


@dataclass(frozen=True)
class Option:
    """One ``--option KEY=VALUE`` a backend accepts: a line of help and the form of its value.

    The value is one of ``choices`` when they are given (``choices_of()`` when they change at run
    time, as the registry's names do), else an integer in [``lo``, ``hi``], or, with ``pattern``, a
    string matching it (``form`` says what it looks like, for the message).
    """

    help: str
    choices: tuple[str, ...] = ()
    lo: int | None = None
    hi: int | None = None
    pattern: str | None = None
    form: str = ""
    choices_of: Callable[[], tuple[str, ...]] | None = None

    def values(self) -> tuple[str, ...]:
        """The accepted values of a choice option (empty for the others)."""
        return self.choices_of() if self.choices_of is not None else self.choices

    def check(self, key: str, text: str) -> None:
        """Raise :class:`ConfigError` unless ``text`` is a valid value of option ``key``."""
        if self.values():
            one_of(key, text, self.values())
        elif self.pattern is not None:
            if not (text.isascii() and re.fullmatch(self.pattern, text)):
                raise ConfigError(f"{key!r} must look like {self.form} (got {text!r})")
        else:
            parse_int(key, text, self.lo, self.hi)

    def describe(self) -> str:
        """The value's form and the help, for ``suite backends``."""
        if self.values():
            form = "|".join(self.values())
        elif self.pattern is not None:
            form = self.form
        else:
            form = f"integer in [{self.lo}, {self.hi}]"
        return f"{form}: {self.help}"

@dataclass(frozen=True)
class Tunable:
    """One scheduling parameter a backend lets ``suite tune`` search (:attr:`Backend.tunable`).

    The backend declares it, so neither the engine nor the CLI knows any parameter by name:
    ``suite tune --FLAG V1,V2,...`` sets the values walked, in order (``walk`` when not given),
    each an integer in [``lo``, ``hi``].
    """

    flag: str
    help: str
    walk: tuple[int, ...]
    lo: int = 0
    hi: int | None = None

    def parse(self, text: str) -> tuple[int, ...]:
        """``--FLAG``'s comma-separated values (at most 64), or :class:`ConfigError` naming the flag."""
        parts = text.split(",")
        if len(parts) > 64 or not all(v.strip().isascii() and v.strip().isdigit() for v in parts):
            raise ConfigError(f"'{self.flag}' must be at most 64 comma-separated integers (got {text!r})")
        return tuple(parse_int(self.flag, v, self.lo, self.hi) for v in parts)

    def describe(self) -> str:
        """The option and its default walk, for ``suite backends``."""
        return f"--{self.flag} (default {','.join(map(str, self.walk))}): {self.help}"


#: OpenMP's wait policy when the user sets neither OMP_WAIT_POLICY nor GOMP_SPINCOUNT. libgomp's
#: own default spins 300,000 times before sleeping; on a machine whose cores other processes
#: share, a spinning team burns the core its partner needs (benchmarks/threads_policy.py).
OMP_WAIT_DEFAULT = "PASSIVE"


def default_omp_wait_policy() -> None:
    """Set ``OMP_WAIT_POLICY`` to :data:`OMP_WAIT_DEFAULT` unless the user chose a wait policy.

    libgomp reads the variable once, when it is loaded (by ``import torch``), so a backend module
    calls this before importing torch; once torch is loaded it changes nothing.
    """
    if "torch" in sys.modules or "OMP_WAIT_POLICY" in os.environ or "GOMP_SPINCOUNT" in os.environ:
        return
    os.environ["OMP_WAIT_POLICY"] = OMP_WAIT_DEFAULT


def omp_wait_policy() -> str:
    """The wait policy OpenMP was given, for the result: the variables, or libgomp's default."""
    told = [f"{k}={os.environ[k]}" for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT") if k in os.environ]
    return " ".join(told) or "libgomp default (spin, then sleep)"


#: glibc's malloc, told to keep large blocks: an allocation up to this size comes from the heap, not
#: from fresh mmap'd pages (32 MiB, glibc's largest; a 2,048-item batch of dlrm-v2's 3,456-wide
#: activations is 28 MiB) ...
MALLOC_MMAP_THRESHOLD_BYTES = 32 * 2**20
#: ... and freed memory at the top of the heap goes back to the system only beyond this much. By
#: default glibc maps a large block fresh and unmaps it on free, so every activation of every batch
#: is page-faulted in again; with both set none is, and dlrm-v2 ran 4-10% faster per core (docs/cpu-speed.md).
MALLOC_TRIM_THRESHOLD_BYTES = 2**30
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
_malloc_policy = ""


def default_malloc_policy() -> str:
    """Have glibc's malloc keep large blocks for reuse (:data:`MALLOC_MMAP_THRESHOLD_BYTES`,
    :data:`MALLOC_TRIM_THRESHOLD_BYTES`) unless the user set glibc's own variables; returns what
    holds, for the result. Idempotent; a no-op off glibc."""
    global _malloc_policy
    if _malloc_policy:
        return _malloc_policy
    told = [f"{k}={os.environ[k]}" for k in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_") if k in os.environ]
    if told:
        _malloc_policy = " ".join(told)
    elif not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        _malloc_policy = "system default"
    else:
        libc = ctypes.CDLL(None)
        ok = libc.mallopt(_M_MMAP_THRESHOLD, MALLOC_MMAP_THRESHOLD_BYTES) and libc.mallopt(_M_TRIM_THRESHOLD, MALLOC_TRIM_THRESHOLD_BYTES)
        _malloc_policy = (f"glibc mmap_threshold={MALLOC_MMAP_THRESHOLD_BYTES} trim_threshold={MALLOC_TRIM_THRESHOLD_BYTES}"
                          if ok else "glibc default (mallopt refused)")
    return _malloc_policy


def cpu_parallelism(scenario: Scenario, cores: int, threads: int) -> tuple[int, int]:
    """(intra-op threads, harness workers) of a thread-parallel CPU backend.

    Offline: one worker whose calls use every core (big batches split well across a team). Every
    other scenario: one intra-op thread per call and a worker per core, so no call ever waits at a
    team barrier for a thread another process has descheduled, which is what collapsed Server's
    tail on a shared 2-core machine (measured in benchmarks/threads_policy.py). A ``threads`` given
    by the user is kept, with workers filling the remaining cores.
    """
    if not threads:
        threads = cores if scenario is Scenario.OFFLINE else 1
    return threads, max(1, cores // threads)


@dataclass(frozen=True, kw_only=True)
class BackendConfig:
    """What a backend is asked to run.

    Attributes:
        model: the architecture, scale and weight seed; equal specs give identical weights.
        threads: intra-op threads; 0 means one per available core.
        precision: arithmetic of embeddings and MLPs (sigmoid and AUC stay fp32).
        options: backend-specific settings as (key, value) string pairs, validated by the backend.
    """

    model: ModelSpec
    threads: int = 0
    precision: str = "fp32"
    options: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        parse_int("threads", self.threads, 0, MAX_THREADS)
        if self.precision not in PRECISIONS:
            raise ConfigError(f"'precision' must be one of {list(PRECISIONS)} (got {self.precision!r})")

    @property
    def resolved_threads(self) -> int:
        """``threads``, with 0 replaced by the number of cores this process may use."""
        return self.threads or len(os.sched_getaffinity(0))

    def option(self, key: str, default: str) -> str:
        """The value of backend option ``key``."""
        return dict(self.options).get(key, default)


@dataclass(frozen=True, kw_only=True)
class BackendInfo:
    """What ran, for the result: backend name, framework version, device and settings."""

    name: str
    version: str
    device: str
    precision: str = "fp32"
    threads: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    #: The accelerator's model name and memory as the driver reports them (``None`` on the CPU):
    #: ``suite submit`` fills the systems JSON from these, never from the ``device`` display string.
    accelerator_model: str | None = None
    accelerator_memory_bytes: int | None = None

    def to_dict(self) -> dict[str, Any]:
        accelerator = (
            {"accelerator_model": self.accelerator_model, "accelerator_memory_bytes": self.accelerator_memory_bytes}
            if self.accelerator_model is not None
            else {}
        )
        return {
            "name": self.name,
            "version": self.version,
            "device": self.device,
            "precision": self.precision,
            "threads": self.threads,
            **accelerator,
            **self.extra,
        }


@dataclass(frozen=True, kw_only=True)
class BatchDefaults:
    """The batcher a loaded backend asks for when the user sets none: items per batch, the wait for
    a batch to fill, and harness workers. They replace the rule table's generic values."""

    max_batch_items: int
    batch_timeout_us: int
    workers: int
    #: Batches the harness lets the backend hold at once (0: as many as workers). Below the
    #: workers, a batch whose wait is over closes only once the device can take it, and keeps
    #: filling until then, so a backlog becomes full batches instead of a queue of small ones.
    batches_in_flight: int = 0


#: Batch sizes an accelerator backend prepares work for (torch-cuda captures one CUDA graph each); a
#: batch is padded up to the next one. Powers of two, with 1.5x steps from 1024 up, where a batch's
#: device time grows with its items: padding there costs throughput, and Server's batches are of any
#: size (a 9,000-item batch padded to 16,384 wastes 45% of its device time, to 12,288 only 27%).
ACCELERATOR_BUCKETS = (16, 64, 128, 256, 512, 1024, 1536, 2048, 3072, 4096, 6144, 8192, 12288, 16384)
#: A Server batch may take at most this share of the latency bound on the device: a query may wait
#: for the batch in service, for its own batch to fill, and for its own batch to run.
SERVER_BATCH_SHARE = 1 / 8


def bucket(n: int, buckets: tuple[int, ...] = ACCELERATOR_BUCKETS) -> int:
    """The smallest bucket holding ``n`` items, or ``n`` itself when it exceeds every bucket."""
    for size in buckets:
        if n <= size:
            return size
    return n


def accelerator_batching(scenario: str, target_latency_ns: int, replay_ms: Mapping[int, float], workers: int,
                         in_flight: int = 0) -> BatchDefaults:
    """The batcher for a device that runs one batch at a time, from its measured time per bucket.

    Offline: the largest bucket (16,384 items without times), no wait. Server: the largest bucket whose device time is at most
    :data:`SERVER_BATCH_SHARE` of the latency bound (the smallest bucket if none is), and a wait of
    one such batch's device time: the harness forms one batch at a time, so a batch fills for as
    long as the device needs for the one before it anyway, and never closes after one query with the
    device idle only to leave the next arrivals to a batch padded out for a handful of queries.
    Server also holds at most ``in_flight`` batches on the device side (0: no limit): a batch
    closed by its wait while the device is still busy would run padded to its bucket, and a
    device busy with such batches, each as long as its wait, never gets ahead of the arrivals.
    Without measured times: 2,048 items, no wait.
    """
    if scenario.lower() == "offline":
        return BatchDefaults(max_batch_items=max(replay_ms, default=ACCELERATOR_BUCKETS[-1]), batch_timeout_us=0, workers=workers)
    if not replay_ms:
        return BatchDefaults(max_batch_items=2048, batch_timeout_us=0, workers=workers)
    budget_ms = target_latency_ns / 1e6 * SERVER_BATCH_SHARE
    fits = [size for size, ms in replay_ms.items() if ms <= budget_ms]
    size = max(fits, default=min(replay_ms))
    wait_us = min(replay_ms[size], budget_ms) * 1000
    return BatchDefaults(max_batch_items=size, batch_timeout_us=max(1, round(wait_us)), workers=workers,
                         batches_in_flight=min(in_flight, workers))


class Backend(abc.ABC):
    """A model runner behind one contract.

    ``predict`` takes a :class:`~suite.datasets.batch.Batch` of N items and returns float32 click
    probabilities: shape (N,) for one task, (N, tasks) for multi-task models. It may be called from
    several threads only if the backend says so (``thread_safe``).
    """

    name: ClassVar[str]
    #: True when ``predict`` may run concurrently from several harness workers.
    thread_safe: ClassVar[bool] = False
    #: True for a backend whose work runs elsewhere (placed workers) and that offers
    #: ``predict_async(batch) -> Future`` (returning at once, ``batch`` read): the harness then
    #: answers each batch on the thread that resolves its future, none waiting on ``predict``.
    completes_async: ClassVar[bool] = False
    #: Harness workers when ``--workers`` is not given.
    default_workers: ClassVar[int] = 1
    #: The ``--option`` keys this backend accepts; any other key is refused before anything loads.
    options: ClassVar[Mapping[str, Option]] = {}

    # Capabilities: what the engine, submit and the tests ask instead of matching names.
    #: The framework as a submission's systems JSON names it ("" for none: the name is used).
    framework: ClassVar[str] = ""
    #: Where it computes: "cpu", "cuda", "none" (computes nothing), or "inner" (on other backends).
    device_kind: ClassVar[str] = "cpu"
    #: The ``--precision`` values it accepts (its ``load`` refuses the others).
    precisions: ClassVar[tuple[str, ...]] = ("fp32",)
    #: Python modules it needs installed (``unavailable_reason`` says when one is missing).
    requires: ClassVar[tuple[str, ...]] = ()
    #: Scheduling parameters ``suite tune`` may search, by name (each with its ``suite tune`` option
    #: and default walk), set between runs by :meth:`retune` and walked by :meth:`tune`; empty when
    #: the backend has none (then ``suite tune`` refuses it).
    tunable: ClassVar[Mapping[str, Tunable]] = {}

    def __init__(self, config: BackendConfig) -> None:
        self.config = config

    @classmethod
    def check_options(cls, pairs: Sequence[tuple[str, str]]) -> None:
        """Refuse an unknown, repeated or malformed ``--option`` (called before the dataset loads)."""
        seen: set[str] = set()
        for key, text in pairs:
            if key not in cls.options:
                if not cls.options:
                    raise ConfigError(f"backend {cls.name!r} takes no --option (got {key!r})")
                raise ConfigError(f"'option' must be one of {sorted(cls.options)} for backend {cls.name!r} (got {key!r})")
            if key in seen:
                raise ConfigError(f"'option' {key!r} is given twice for backend {cls.name!r}")
            seen.add(key)
            cls.options[key].check(key, text)

    @classmethod
    def check_config(cls, config: BackendConfig) -> None:
        """Refuse a config this backend cannot run (its options, and the precision they go with)
        without loading anything: a scheduler calls it before it starts workers of this backend, so a
        bad setting is a one-line error of the run, not a worker's. The default checks the options."""
        cls.check_options(config.options)

    @classmethod
    def parallelism(cls, scenario: Scenario, cores: int, threads: int) -> tuple[int, int]:
        """(intra-op threads, harness workers) for a run of ``scenario`` on ``cores`` cores.

        ``threads`` is the user's ``--threads`` (0: not given); ``--workers``, when given, replaces
        the workers returned here. The default: a thread per core and :attr:`default_workers`.
        """
        return threads or cores, cls.default_workers

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """Why this backend cannot run on this machine, or None when it can."""
        return None

    @abc.abstractmethod
    def load(self) -> None:
        """Build or load the model and make it ready to predict (weights resident, warmed up)."""

    @abc.abstractmethod
    def predict(self, batch: Batch) -> np.ndarray:
        """Scores in [0, 1] for every item of ``batch``, float32."""

    @abc.abstractmethod
    def info(self) -> BackendInfo:
        """Describe what runs: framework version, device, precision, threads.

        The runner asks once after ``load`` and again after the run, so a backend may report what
        it did (a scheduler's routing counts, say).
        """

    def batch_defaults(self, scenario: str, target_latency_ns: int) -> BatchDefaults | None:
        """Batcher settings measured or chosen for this backend and model, asked after ``load``
        (``scenario`` is LoadGen's name, ``Offline``, ``Server``...; ``target_latency_ns`` the latency bound).
        None (the default): the rule table's values and ``default_workers``."""
        return None

    def queries_in_flight(self) -> int:
        """How many queries the backend wants at once when it schedules queries itself; 0 if not.

        0 (the default): the harness batches queries for the backend. Above 0: the harness hands
        ``predict`` exactly one whole query per call, never merged with another (LoadGen measures
        latency per query, so a scheduler must see each one), from this many threads at once; the
        backend splits, queues and parallelises the work itself. Such a backend must be
        ``thread_safe``.
        """
        return 0

    def network_name(self) -> str | None:
        """For a backend that fronts an MLPerf Network-division SUT (``--cluster-mode network``):
        the SUT's name as LoadGen's query dispatch library reports it, asked of every SUT node over
        the network. None (the default): LoadGen talks to the harness as a local SUT."""
        return None

    def retune(self, **values: int) -> None:
        """Set the :attr:`tunable` parameters between runs, the loaded model kept (``suite tune``)."""
        raise ConfigError(f"backend {self.name!r} has no tunable parameters")

    @classmethod
    def check_walks(cls, walks: Mapping[str, Sequence[int]]) -> None:
        """Refuse values ``suite tune`` was asked to walk (``walks``: parameter -> values, in order)
        before anything loads. The default: each parameter is :attr:`tunable`, its list not empty."""
        for name, values in walks.items():
            one_of("tunable parameter", name, list(cls.tunable))
            if not values:
                raise ConfigError(f"'{name}' must be a non-empty list of values (got [])")

    def tune(self, search: Search, walks: Mapping[str, Sequence[int]]) -> TuneReport:
        """Walk the :attr:`tunable` setting with ``search`` (``suite.search.Search``: the capacity of
        a setting from LoadGen Server runs, its confirmation) and say what to apply: the scheduling
        policy's own tuner, which lives with the scheduler. ``walks`` overrides the values walked
        per parameter. Called on the loaded backend."""
        raise ConfigError(f"backend {self.name!r} has no tunable parameters")

    def attach_items(self, items: Batch) -> None:  # noqa: B027 - a hook most backends leave empty
        """Called by the harness before the first ``predict`` with the dataset's items.

        Every batch the harness passes is cut from ``items`` and says where (``Batch.source`` is
        ``items``, ``Batch.spans`` its rows), so a backend running in other processes can share the
        arrays once and then send row ranges instead of arrays. Called again, with the same object,
        for every run of a loaded backend. The default does nothing.
        """

    def begin_run(self) -> None:  # noqa: B027 - a hook most backends leave empty
        """Called by the harness as LoadGen's run begins, after the warm-up: what a backend measures
        per run (torch-cuda's ``timeline``) starts here. The default does nothing."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the model and any worker, device or file it holds."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
