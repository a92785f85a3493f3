"""Where a run's backends live: the worker protocol every placement speaks.

LoadGen and the batcher stay in one driver process (``suite.harness``). The batches they form go
to *workers* that a :class:`Placement` starts and owns: threads of the driver, local processes
(one per GPU, or N on a CPU host) or, later, actors on the nodes of a cluster. Every placement
speaks one protocol:

- A worker is built from a :class:`WorkerSpec`: the registry name of its backend and the
  :class:`~suite.backends.base.BackendConfig` to build it with (its device included), and where
  the run's items come from (:class:`LibrarySource`). The worker imports its backend through the
  lazy registry (``suite.backends.get_backend``); no placement imports a backend module.
- Every worker holds the run's items (the query library's rows): :meth:`Placement.attach` shares
  them once (threads: the same arrays; local processes: one shared-memory block; a remote worker
  regenerates or loads them from :class:`LibrarySource` and checks the row count).
- A request is the rows of one ``predict`` call as *spans* of those items, ``[(lo, hi), ...]``
  (or, for a batch not cut from the items, the :class:`~suite.datasets.batch.Batch` itself);
  :meth:`Placement.submit` sends one or more requests to one worker and returns a future of their
  float32 scores, back to back in request order.
- A worker that dies fails every future it held with :class:`WorkerLost` naming it, and the
  placement fails every later submit the same way (a run that lost a worker is not the run that
  was asked for); :meth:`Placement.dead` names the lost workers for the result record.
"""

from __future__ import annotations

import abc
import statistics
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeAlias

import numpy as np

from suite.backends.base import Backend, BackendConfig
from suite.datasets.batch import Batch
from suite.errors import BackendError, ConfigError
from suite.models import ModelSpec

#: Rows of the attached items, as (start, stop) pairs.
Spans = Sequence[tuple[int, int]]
#: One ``predict`` call on a worker: spans of the attached items, or the rows themselves.
Request: TypeAlias = Spans | Batch
#: Pings per worker when the driver-to-worker round trip is measured.
ROUND_TRIP_PINGS = 20


class WorkerLost(BackendError):
    """A worker died (or its node was lost); its in-flight requests and every later one fail."""


@dataclass(frozen=True, kw_only=True)
class LibrarySource:
    """Where a worker that shares no memory with the driver gets the run's items.

    Attributes:
        path: a dataset folder every node can read (``--dataset``, or a shared cache); loaded as is.
        model: without ``path``: the teacher model whose synthetic dataset of ``rows`` items is
            generated (seeded: identical on every node) or taken from the node's cache.
        rows: items in the dataset; a worker checks that it holds exactly this many.
    """

    path: str | None = None
    model: ModelSpec | None = None
    rows: int

    def __post_init__(self) -> None:
        if (self.path is None) == (self.model is None):
            raise ValueError("a LibrarySource names a dataset path or a model to generate for, not both or neither")
        if self.rows < 1:
            raise ValueError(f"'rows' must be >= 1 (got {self.rows!r})")


@dataclass(frozen=True, kw_only=True)
class WorkerSpec:
    """Everything one worker needs to rebuild its backend and its items.

    Attributes:
        name: how messages and the record name the worker (``"CPU worker 0"``, ``"GPU worker 1"``).
        backend: a registry name (``suite.backends.REGISTRY``).
        config: what the backend is built with; a GPU worker's device is its ``device`` option.
        device: the device the worker serves (``"cpu"``, ``"cuda:1"``), for the record.
        cores: pin a local worker process to these cores (empty: not pinned).
        library: where a remote worker gets the items; local placements share them instead.
        concurrency: requests a worker runs at once, each on its own thread (a thread-safe GPU
            backend overlaps one batch's host work with another's kernels on its lanes); 1: in order.
    """

    name: str
    backend: str
    config: BackendConfig
    device: str = "cpu"
    cores: tuple[int, ...] = ()
    library: LibrarySource | None = None
    concurrency: int = 1

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError(f"'concurrency' must be >= 1 (got {self.concurrency!r})")

    @property
    def slug(self) -> str:
        """The name as a process or thread name: ``"CPU worker 0"`` -> ``"cpu-worker-0"``."""
        return "-".join("".join(c if c.isalnum() else " " for c in self.name.lower()).split())


@dataclass(frozen=True, kw_only=True)
class RoundTrip:
    """The driver-to-worker round trip of an empty request (no ``predict``), per worker.

    Attributes:
        median_us, p99_us: over every ping of every worker, microseconds.
        pings: pings per worker.
    """

    median_us: float
    p99_us: float
    pings: int

    def to_dict(self) -> dict[str, Any]:
        return {"median_us": self.median_us, "p99_us": self.p99_us, "pings": self.pings}


@dataclass(frozen=True, kw_only=True)
class PlacementInfo:
    """What a placement ran, for the result record.

    Attributes:
        name: the placement (``threads``, ``processes``, ...).
        nodes: hosts the workers ran on.
        devices_per_node: the devices of each node that served (GPUs, or CPU workers).
        workers: the workers' names, in index order.
        devices: each worker's device, in index order.
        round_trip: the measured driver-to-worker round trip (None: not measured).
        lost: the workers that died, named.
    """

    name: str
    nodes: int
    devices_per_node: int
    workers: tuple[str, ...]
    devices: tuple[str, ...]
    round_trip: RoundTrip | None = None
    lost: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "nodes": self.nodes,
            "devices_per_node": self.devices_per_node,
            "workers": list(self.workers),
            "devices": list(self.devices),
            "round_trip_us": self.round_trip.to_dict() if self.round_trip is not None else None,
            "lost_workers": list(self.lost),
            **self.extra,
        }


class Placement(abc.ABC):
    """Workers placed somewhere, each running one backend, answering requests of spans.

    Life: :meth:`start` (workers built and loaded; raises :class:`BackendError` if one fails),
    :meth:`attach` (the items shared; again for every run), :meth:`submit` from any thread, then
    :meth:`close` (idempotent). ``submit`` never blocks on a worker's work and its future always
    resolves: with scores, or with an error (a :class:`WorkerLost` when the worker died).
    """

    #: The placement's name in the CLI and the record (its key in ``suite.placement.PLACEMENTS``).
    name: ClassVar[str]
    #: For a placement on other hosts: what ``--cluster`` takes to choose it, for messages (its
    #: name, or ``NAME://ADDRESS``). Empty: ``--cluster`` does not choose it.
    address_form: ClassVar[str] = ""

    @classmethod  # noqa: B027 - a hook: a placement whose name is its whole address checks nothing
    def check_address(cls, text: str) -> None:
        """Refuse a malformed ``--cluster`` value naming this placement (before anything loads)."""

    @classmethod
    def place(cls, config: Any, backend_cls: type[Backend], cores: int) -> tuple[Backend, int, int]:
        """The backend of a run (``config`` a ``RunConfig``) whose workers this placement holds, and
        the (intra-op threads per worker, harness threads) it runs with. The runner asks it of the
        placement ``--devices``, ``--processes`` or ``--cluster`` names (``suite.placement.chosen``).

        Raises:
            ConfigError: this placement does not place a run's backend (the default), or the run
                asks for what it cannot give.
        """
        raise ConfigError(f"placement {cls.name!r} does not place a run's backend")

    def __init__(self) -> None:
        self.specs: tuple[WorkerSpec, ...] = ()
        #: Each worker's ``BackendInfo.to_dict()`` once started, in index order.
        self.worker_info: list[dict[str, Any]] = []
        self.round_trip: RoundTrip | None = None

    @abc.abstractmethod
    def start(self, specs: Sequence[WorkerSpec]) -> None:
        """Build and load one worker per spec (in parallel where the placement can)."""

    @abc.abstractmethod
    def attach(self, items: Batch) -> None:
        """Make ``items`` the rows every later request's spans refer to."""

    @abc.abstractmethod
    def submit(self, worker: int, requests: Sequence[Request]) -> Future[np.ndarray]:
        """Run ``requests`` on worker ``worker``, each as its own ``predict`` call, in order.

        The future's result is the requests' float32 scores back to back ((N,) or (N, tasks)). An
        empty ``requests`` is a ping: the worker answers an empty array without predicting.
        """

    def outstanding(self) -> list[int]:
        """Requests each worker holds now (a snapshot, for spreading work); the default knows none."""
        return [0] * len(self)

    def least_loaded(self) -> int:
        """The worker the next request should go to: the one holding the fewest requests (the
        first on a tie; by turns where :meth:`outstanding` knows nothing)."""
        o = self.outstanding()
        if any(o):
            return o.index(min(o))
        self._turn = (getattr(self, "_turn", -1) + 1) % len(self)
        return self._turn

    def ask(self, worker: int, method: str, *args: Any) -> Any:
        """Call a query method of worker ``worker``'s backend (``batch_defaults``) and return what it
        returns; placements that cannot raise NotImplementedError (the caller falls back)."""
        raise NotImplementedError(f"placement {self.name!r} cannot ask its workers")

    @abc.abstractmethod
    def dead(self) -> list[str]:
        """What happened to each worker that died, naming it (empty while all live)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Stop every worker and release what the placement holds; idempotent."""

    def __len__(self) -> int:
        return len(self.specs)

    def nodes(self) -> int:
        """Hosts the workers run on (1 for the local placements)."""
        return 1

    def measure_round_trip(self, pings: int = ROUND_TRIP_PINGS) -> RoundTrip:
        """Time ``pings`` empty requests to every worker, one at a time (after one unmeasured), and
        keep the result."""
        samples: list[float] = []
        for w in range(len(self)):
            self.submit(w, []).result()  # unmeasured: waits out whatever the worker was still doing (attaching)
            for _ in range(pings):
                t0 = time.perf_counter()
                self.submit(w, []).result()
                samples.append((time.perf_counter() - t0) * 1e6)
        samples.sort()
        self.round_trip = RoundTrip(
            median_us=round(statistics.median(samples), 1),
            p99_us=round(samples[min(len(samples) - 1, int(len(samples) * 0.99))], 1),
            pings=pings,
        )
        return self.round_trip

    def info(self) -> PlacementInfo:
        devices = tuple(s.device for s in self.specs)
        nodes = self.nodes()
        return PlacementInfo(
            name=self.name,
            nodes=nodes,
            devices_per_node=max(1, len(devices) // max(1, nodes)),
            workers=tuple(s.name for s in self.specs),
            devices=devices,
            round_trip=self.round_trip,
            lost=tuple(self.dead()),
        )

    def __enter__(self) -> Placement:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def load_items(source: LibrarySource) -> Batch:
    """The run's items as a worker off this host rebuilds them from ``source`` (loaded from its
    path, or the seeded synthetic dataset generated or taken from this node's cache).

    Raises:
        WorkerLost: the rows differ from ``source.rows`` (another dataset than the driver's).
    """
    from pathlib import Path

    from suite.datasets import synthetic
    from suite.datasets.store import Dataset

    path = Path(source.path) if source.path is not None else synthetic.ensure(source.model, source.rows)
    items = Dataset.load(path).items
    if len(items) != source.rows:
        raise WorkerLost(f"the dataset at {path} holds {len(items)} items, the driver's {source.rows}")
    return items


def concat(parts: Sequence[np.ndarray]) -> np.ndarray:
    """Scores of several requests back to back (an empty float32 array for none)."""
    if not parts:
        return np.empty(0, dtype=np.float32)
    return parts[0] if len(parts) == 1 else np.concatenate(parts)
