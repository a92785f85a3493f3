"""Workers as Ray actors on the nodes of a Ray cluster: ``suite run --cluster ray``.

LoadGen and the batcher stay in the driver (this process); :class:`RayPlacement` places one actor
per GPU of the cluster (a GPU backend) or one per node (a CPU backend: the node's CPUs are the
worker's threads). Each actor builds its backend through the lazy registry from its
:class:`~suite.placement.base.WorkerSpec`, exactly as a local worker process does, and holds the
run's items: shipped once through Ray's object store (:meth:`RayPlacement.attach`: one
``ray.put``, fetched once per node, read in place), or, for a spec that names a
:class:`~suite.placement.base.LibrarySource`, regenerated or loaded on the node and checked
against the driver's row count. A request is row spans of those items (a few dozen bytes); the
reply is the float32 scores. They travel over a direct connection from the driver to each actor,
in the local worker processes' wire format (``dispatch="direct"``, the default: a Ray actor call
costs ten times a pipe's CPU), or, through Ray Client, as Ray actor calls, several queued requests
to one call (``dispatch="calls"``).

Failure: an actor that dies (its process killed, its node lost) fails every future it held with
:class:`~suite.placement.base.WorkerLost` naming it, and every later submit fails the same way, so
LoadGen gets every query back and the run is invalid with the lost worker named.

``ray`` is imported only here, and only when a Ray placement is built (:func:`import_ray`):
``suite --help`` and every other command run without it. Installed with ``pip install
'recsuite[cluster]'``.

Size: this module is over 450 lines because Ray's connection quirks (loopback addresses, Ray
Client), the actor class and the failure bookkeeping are one placement and only make sense together.
"""

from __future__ import annotations

import logging
import os
import pickle
import queue
import signal
import socket
import threading
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from suite.backends import get_backend
from suite.backends.base import Backend, BackendConfig
from suite.datasets.batch import Batch
from suite.errors import BackendError, BackendUnavailableError, ConfigError
from suite.placement.backend import THREADS_PER_WORKER
from suite.placement.base import (
    LibrarySource,
    Placement,
    PlacementInfo,
    Request,
    WorkerLost,
    WorkerSpec,
    concat,
    load_items,
)
from suite.placement.worker import ID, OK

log = logging.getLogger(__name__)

#: What ``--cluster`` accepts besides ``ray://HOST:PORT``: the cluster in ``RAY_ADDRESS``, else
#: the one ``ray start`` started on this host.
AUTO = "ray"
#: The forms of ``--cluster`` that choose this placement, for messages.
ADDRESS_FORM = "ray (RAY_ADDRESS, else the cluster `ray start` started here) or ray://HOST:PORT"


def parse_cluster_text(text: object) -> str:
    """``--cluster`` as given, if well formed: ``ray`` (``RAY_ADDRESS``, else the cluster ``ray
    start`` started on this host) or ``ray://HOST:PORT`` (a Ray Client address)."""
    form = f"'cluster' must be {ADDRESS_FORM} (got {text!r})"
    if not isinstance(text, str):
        raise ConfigError(form)
    if text == AUTO:
        return text
    host, _, port = text.removeprefix("ray://").rpartition(":")
    if text.startswith("ray://") and host and port.isascii() and port.isdigit() and 0 < int(port) < 65536:
        return text
    raise ConfigError(form)

#: How ``pip`` installs what this placement needs.
EXTRA = "pip install 'recsuite[cluster]'"
#: Seconds the cluster's address may take to accept a TCP connection before we give up on it
#: (``ray.init`` itself retries a dead address for minutes).
CONNECT_TIMEOUT_S = 10.0
#: Seconds an actor may take to be placed, import its framework and load its model.
START_TIMEOUT_S = 600.0
#: Seconds :meth:`RayPlacement.close` waits for the actors to close their backends.
CLOSE_TIMEOUT_S = 10.0
#: Actor calls in flight per worker beyond its concurrency: one running and one waiting at the
#: actor, so the worker never waits on the driver between batches.
CALLS_AHEAD = 1
#: Most submits one actor call carries when they queued while the worker's calls were in flight.
MAX_COALESCED = 8
#: Seconds an actor waits for the driver to connect to its channel.
CHANNEL_ACCEPT_S = 60.0
#: How batches travel: ``direct``, over a connection of the driver's to each actor (the local
#: processes' protocol; Ray still places, feeds and watches the actors), or ``calls``, as Ray
#: actor calls (what a driver connected through Ray Client, which may not reach the nodes, uses).
DISPATCH = ("direct", "calls")
#: Harness threads per Ray worker of one lane with Ray-call dispatch (a worker of L lanes gets L - 1
#: more): two calls in flight and the submits queued behind them, which go as one call. A Ray call costs the driver and
#: the actor ~0.4 ms of CPU each on the 2-core test host, several times a local process's pipe;
#: what queued together pays it once.
THREADS_PER_RAY_WORKER = 8
_EMPTY = np.empty(0, dtype=np.float32)
_LOOPBACK = ("127.", "localhost", "::1")


def import_ray() -> Any:
    """The ``ray`` module.

    Raises:
        BackendUnavailableError: Ray is not installed (the message names the extra to install).
    """
    try:
        import ray
    except ImportError:
        raise BackendUnavailableError(f"--cluster ray needs Ray, which is not installed: {EXTRA}") from None
    return ray


def _host_port(address: str) -> tuple[str, int] | None:
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def _bootstrap_address(cluster: str) -> str:
    """The address ``ray.init`` will connect to for ``--cluster`` (``ray``: ``RAY_ADDRESS``, else
    the latest cluster ``ray start`` started on this host)."""
    if cluster != AUTO:
        return cluster
    env = os.environ.get("RAY_ADDRESS", "")
    if env:
        return env
    try:
        from ray._private.services import get_ray_address_from_environment

        found: str | None = get_ray_address_from_environment("auto", None)
    except Exception as exc:
        raise ConfigError(f"--cluster ray found no Ray cluster (set RAY_ADDRESS or run `ray start --head`): {str(exc).splitlines()[0]}") from None
    if not found or found == "auto":
        raise ConfigError("--cluster ray found no Ray cluster (set RAY_ADDRESS or run `ray start --head`)")
    return found


def connect(cluster: str) -> tuple[Any, bool, str]:
    """Connect this process to the Ray cluster ``--cluster`` names, unless it is connected already.

    Returns ``(ray, connected here, address)``; a caller that connected disconnects with
    ``ray.shutdown()``.

    A cluster bound to the loopback address (``ray start --head --node-ip-address 127.0.0.1``, or
    ``ray.cluster_utils.Cluster`` in tests) is reached on the loopback address: ``ray.init`` would
    otherwise replace 127.0.0.1 with this host's routable address, where such a cluster does not
    listen. ``ray.init`` installs its own SIGTERM handler; the run's own (``suite.interrupts``) is
    put back.

    Raises:
        BackendUnavailableError: Ray is not installed, or the cluster's address does not answer.
        ConfigError: ``--cluster ray`` found no cluster to connect to.
    """
    ray = import_ray()
    if ray.is_initialized():
        return ray, False, str(getattr(ray.get_runtime_context(), "gcs_address", "") or cluster)
    address = _bootstrap_address(cluster)
    target = _host_port(address)
    if target is not None:
        try:
            socket.create_connection(target, timeout=CONNECT_TIMEOUT_S).close()
        except OSError as exc:
            raise BackendUnavailableError(f"the Ray cluster at {address} does not answer ({exc.strerror or exc})") from None
    from ray._private import ray_constants

    loopback = target is not None and target[0].startswith(_LOOPBACK) and not address.startswith("ray://")
    keep_cluster_flag = ray_constants.ENABLE_RAY_CLUSTER
    keep_sigterm = signal.getsignal(signal.SIGTERM) if threading.current_thread() is threading.main_thread() else None
    try:
        if loopback:
            ray_constants.ENABLE_RAY_CLUSTER = False  # Ray then takes 127.0.0.1 as this node's address
        ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    except Exception as exc:
        raise BackendUnavailableError(f"could not connect to the Ray cluster at {address}: {str(exc).splitlines()[0]}") from None
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = keep_cluster_flag
        if keep_sigterm is not None:
            signal.signal(signal.SIGTERM, keep_sigterm)
    return ray, True, address


@dataclass(frozen=True)
class Node:
    """A live node of the cluster, as the driver places workers on it."""

    node_id: str
    ip: str
    cpus: int
    gpus: int


def cluster_nodes(ray: Any) -> list[Node]:
    """The cluster's live nodes, in a stable order (by address, then id)."""
    nodes = []
    for n in ray.nodes():
        if not n.get("Alive"):
            continue
        res = n.get("Resources", {})
        nodes.append(Node(node_id=n["NodeID"], ip=n.get("NodeManagerAddress", "?"),
                          cpus=int(res.get("CPU", 0)), gpus=int(res.get("GPU", 0))))
    return sorted(nodes, key=lambda n: (n.ip, n.node_id))


@dataclass(frozen=True)
class Slot:
    """Where one worker goes: its node, and the Ray resources its actor holds there."""

    node: Node
    cpus: float
    gpus: int


def plan(backend: str, config: BackendConfig, nodes: Sequence[Node], *, concurrency: int = 1) -> tuple[list[WorkerSpec], list[Slot]]:
    """One worker per GPU (a GPU backend: ``device_kind`` cuda) or per node (a CPU backend), with where each goes.

    A GPU worker's actor holds one GPU, which Ray makes its ``cuda:0``; a CPU worker's holds every
    CPU of its node and runs that many intra-op threads (``config.threads`` when set).

    Raises:
        BackendUnavailableError: the cluster has no node to run ``backend`` on.
    """
    specs: list[WorkerSpec] = []
    slots: list[Slot] = []
    gpu = get_backend(backend).device_kind == "cuda"
    for k, node in enumerate(nodes):
        if gpu:
            options = (*((o, v) for o, v in config.options if o != "device"), ("device", "cuda:0"))
            for g in range(node.gpus):
                specs.append(WorkerSpec(
                    name=f"Ray worker {len(specs)} (node {k} {node.ip}, GPU {g})", backend=backend, device=f"node{k}/cuda:{g}",
                    config=BackendConfig(model=config.model, threads=config.threads, precision=config.precision, options=options),
                    concurrency=concurrency))
                slots.append(Slot(node=node, cpus=0, gpus=1))
        elif node.cpus > 0:
            specs.append(WorkerSpec(
                name=f"Ray worker {len(specs)} (node {k} {node.ip}, CPU)", backend=backend, device=f"node{k}/cpu",
                config=BackendConfig(model=config.model, threads=config.threads or node.cpus, precision=config.precision,
                                     options=config.options),
                concurrency=concurrency))
            slots.append(Slot(node=node, cpus=node.cpus, gpus=0))
    if not specs:
        what = "a GPU" if gpu else "a CPU"
        raise BackendUnavailableError(f"the Ray cluster has no live node with {what} for {backend!r} ({len(nodes)} node(s) found)")
    return specs, slots


class RayWorker:
    """One worker, inside its Ray actor: a backend and the items its requests' spans refer to."""

    def __init__(self, spec: WorkerSpec) -> None:
        self.spec = spec
        self.backend: Backend | None = None
        self.items: Batch | None = None
        # The actor runs CALLS_AHEAD more calls at once than the worker's concurrency, so Ray's own
        # work on one call (its arguments in, its scores out) overlaps another's predict; the
        # predicts themselves run at most `concurrency` at once.
        self.lanes = threading.BoundedSemaphore(spec.concurrency)
        self.channel_done = threading.Event()
        self.nodelay: bool | None = None
        self.nice = 0

    def load(self, nice: int = 0) -> tuple[str, dict[str, Any]]:
        """Build and load the backend: ``("K", info)``, or ``("F", why)`` in one line.

        The actor first takes the driver's ``nice`` value (Ray starts its workers at nice 15, so on
        a busy host each batch waited behind every nice-0 process for the CPU;
        ``info["nice"]`` is what it got: without the privilege to lower it, Ray's, see
        docs/cluster.md). A spec that names ``cores`` pins the actor's process to them, as a local
        worker process is pinned (``info["pinned_cores"]``); a core the node lacks fails the load."""
        self.nice = renice(nice)
        try:
            pin(self.spec.cores)
            backend = get_backend(self.spec.backend)(self.spec.config)
            backend.load()
            self.backend = backend
            info = backend.info().to_dict()
        except Exception as exc:
            return "F", {"error": f"{type(exc).__name__}: {exc}"}
        info["pid"] = os.getpid()
        info["node"] = socket.gethostname()
        info["nice"] = self.nice
        if self.spec.cores:
            info["pinned_cores"] = list(self.spec.cores)
            if len(self.spec.cores) == 1:
                info["pinned_core"] = self.spec.cores[0]
        return "K", info

    def attach(self, arrays: tuple[np.ndarray, tuple[np.ndarray, ...]] | None, source: LibrarySource | None) -> int:
        """Hold the items (shipped through the object store, or rebuilt from ``source``); their rows."""
        assert self.backend is not None
        if source is not None:
            items = load_items(source)
        elif arrays is not None:
            items = Batch(dense=arrays[0], sparse=tuple(arrays[1]))
        else:
            raise BackendError("attach got neither items nor a library source")
        self.items = items
        self.backend.attach_items(items)
        return len(items)

    def run(self, requests: list[Any]) -> np.ndarray:
        """Every request's float32 scores back to back (an empty request list is a ping)."""
        if not requests:
            return _EMPTY
        assert self.backend is not None
        parts = []
        for request in requests:
            if isinstance(request, tuple):
                batch = Batch(dense=request[0], sparse=request[1])
            else:
                if self.items is None:
                    raise BackendError("a request of spans before the items were attached")
                batch = Batch.of_spans(self.items, request)
            with self.lanes:
                scores = self.backend.predict(batch)
            parts.append(np.ascontiguousarray(scores, dtype=np.float32))
        return concat(parts)

    def run_many(self, calls: list[list[Any]]) -> list[np.ndarray | str]:
        """Several submits' requests, each answered as :meth:`run` answers it: its scores, or its
        error as ``"Type: message"`` (one failing submit does not fail the others)."""
        out: list[np.ndarray | str] = []
        for requests in calls:
            try:
                out.append(self.run(requests))
            except Exception as exc:
                out.append(f"{type(exc).__name__}: {exc}")
        return out

    def open_channel(self, host: str | None, authkey: bytes, nodelay: bool = True) -> tuple[str, int]:
        """Listen on ``host`` (this node's address; None: the one Ray knows this node by) for the
        driver's one connection, authenticated with ``authkey``, and answer its jobs there on a thread
        of the actor's own (:func:`suite.placement.worker.serve`, the local processes' protocol),
        with Nagle's algorithm off (``nodelay``, :func:`no_delay`). Returns the address to connect to."""
        from multiprocessing.connection import Listener

        from suite.placement.worker import serve

        assert self.backend is not None
        backend = self.backend
        listener = Listener((host or _node_address(), 0), authkey=authkey)

        def accept_and_serve() -> None:
            # This thread, and the job threads it starts, answer the batches.
            renice(self.nice, threads=False)
            pin(self.spec.cores, threads=False)
            try:
                listener._listener._socket.settimeout(CHANNEL_ACCEPT_S)  # type: ignore[attr-defined]  # multiprocessing's Listener has no public accept timeout; its private socket does
                conn = listener.accept()
                self.nodelay = no_delay(conn.fileno(), nodelay)
            except Exception:
                self.channel_done.set()
                return
            finally:
                listener.close()
            try:
                serve(conn, backend, self.spec, lambda: self.items)
            finally:
                conn.close()
                self.channel_done.set()

        threading.Thread(target=accept_and_serve, name=f"recsuite-{self.spec.slug}-channel", daemon=True).start()
        bound: Any = listener.address
        return str(bound[0]), int(bound[1])

    def channel_nodelay(self) -> bool | None:
        """Whether the actor's end of the channel has Nagle's algorithm off (None: no channel yet)."""
        return self.nodelay

    def channel_closed(self) -> None:
        """Returns when the channel ends. The driver keeps this call pending: Ray fails it, with its
        reason, when the actor dies."""
        self.channel_done.wait()

    def call(self, method: str, args: tuple[Any, ...]) -> Any:
        assert self.backend is not None
        return getattr(self.backend, method)(*args)

    def close(self) -> None:
        if self.backend is not None:
            self.backend.close()
            self.backend = None
        self.items = None


#: One submit as it waits for and travels in an actor call: its requests on the wire, how many
#: requests they are, and its future.
_Entry = tuple[list[Any], int, "Future[np.ndarray]"]


@dataclass
class _Actor:
    spec: WorkerSpec
    slot: Slot | None
    handle: Any
    pid: int = 0
    alive: bool = True
    outstanding: int = 0
    death: str = ""
    held: set[Future[np.ndarray]] = field(default_factory=set)
    #: Submits waiting for one of the actor's calls in flight to return.
    waiting: deque[_Entry] = field(default_factory=deque)
    calls: int = 0
    #: Submits taken and actor calls sent, since start.
    submits: int = 0
    sent: int = 0
    #: The direct connection to the actor (None: batches go as actor calls), and its jobs in flight
    #: by id: (future, requests).
    conn: Any = None
    jobs: dict[int, tuple[Future[Any], int]] = field(default_factory=dict)
    watch: Any = None

    @property
    def depth(self) -> int:
        """Calls this actor may have in flight."""
        return self.spec.concurrency + CALLS_AHEAD

    def take(self) -> list[_Entry]:
        """The waiting submits the next call carries (the caller holds the lock); counts the call."""
        batch = [self.waiting.popleft() for _ in range(min(MAX_COALESCED, len(self.waiting)))]
        self.calls += 1
        self.sent += 1
        return batch


class RayPlacement(Placement):
    """Workers as Ray actors, one per spec, each on the node :func:`plan` chose for it.

    Args:
        cluster: ``ray`` (``RAY_ADDRESS``, else the cluster ``ray start`` started here) or
            ``ray://HOST:PORT``; a process already connected (``ray.init``) keeps its connection.
        slots: where each spec's actor goes (from :func:`plan`); without them actors are spread
            over the cluster, one CPU each.
        start_timeout_s: how long the actors may take to be placed and load their backends.
        dispatch: how batches travel (:data:`DISPATCH`); None: ``direct``, except through Ray
            Client (``ray://``), where the driver may not reach the nodes.
    """

    name: ClassVar[str] = "ray"
    address_form: ClassVar[str] = ADDRESS_FORM

    @classmethod
    def check_address(cls, text: str) -> None:
        parse_cluster_text(text)

    @classmethod
    def place(cls, config: Any, backend_cls: type[Backend], cores: int) -> tuple[Backend, int, int]:
        """``--cluster ray``: one actor per GPU (or node) of the cluster (:func:`placed`)."""
        return placed(config, backend_cls)

    def __init__(self, cluster: str = AUTO, slots: Sequence[Slot] | None = None, *, start_timeout_s: float = START_TIMEOUT_S,
                 dispatch: str | None = None) -> None:
        super().__init__()
        if dispatch is not None and dispatch not in DISPATCH:
            raise ConfigError(f"'dispatch' must be one of {list(DISPATCH)} (got {dispatch!r})")
        self.dispatch = dispatch
        self.cluster = parse_cluster_text(cluster)
        self.slots = tuple(slots) if slots is not None else None
        self.start_timeout_s = start_timeout_s
        self.address = ""
        self._ray: Any = None
        self._connected_here = False
        self._actors: list[_Actor] = []
        self._lock = threading.Lock()
        self._broken = ""
        self._closing = False
        self._closed = True
        self._items_ref: Any = None
        self._items: Batch | None = None
        self._sends: queue.SimpleQueue[tuple[_Actor, list[_Entry]] | None] = queue.SimpleQueue()
        self._sender: threading.Thread | None = None
        self._next_id = 0
        self._wake_r: Any = None
        self._wake_w: Any = None
        self._collector: threading.Thread | None = None
        #: Nagle's algorithm off on both ends of every channel (off only to measure what it costs).
        self._nodelay = True
        #: The actors' nice value (None: the driver's; 15 only to measure what Ray's default costs).
        self._nice: int | None = None

    @classmethod
    def on_cluster(cls, cluster: str, backend: str, config: BackendConfig, *, concurrency: int = 1,
                   start_timeout_s: float = START_TIMEOUT_S, dispatch: str | None = None) -> tuple[RayPlacement, list[WorkerSpec]]:
        """Connect to ``cluster`` and plan one worker per GPU (or node) found there: the placement
        and the specs to :meth:`start` it with."""
        ray, here, address = connect(parse_cluster_text(cluster))
        try:
            specs, slots = plan(backend, config, cluster_nodes(ray), concurrency=concurrency)
        except BaseException:
            if here:
                ray.shutdown()
            raise
        placement = cls(cluster, slots, start_timeout_s=start_timeout_s, dispatch=dispatch)
        placement._ray, placement._connected_here, placement.address = ray, here, address
        placement.dispatch = placement.dispatch or placement._default_dispatch()
        return placement, specs

    def start(self, specs: Sequence[WorkerSpec]) -> None:
        self.specs = tuple(specs)
        if self.slots is not None and len(self.slots) != len(self.specs):
            raise ValueError(f"{len(self.specs)} specs for {len(self.slots)} slots")
        if self._ray is None:
            self._ray, self._connected_here, self.address = connect(self.cluster)
        ray = self._ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        self._closed = False
        actor_cls = ray.remote(RayWorker)
        for i, spec in enumerate(self.specs):
            slot = self.slots[i] if self.slots is not None else None
            # Named in the job's own (anonymous) namespace: `ray list actors` and a drill can find it.
            options: dict[str, Any] = {"name": f"recsuite-{spec.slug}", "max_concurrency": spec.concurrency + CALLS_AHEAD + 1,
                                       "max_restarts": 0}
            if slot is not None:
                options.update(num_cpus=slot.cpus, num_gpus=slot.gpus,
                               scheduling_strategy=NodeAffinitySchedulingStrategy(slot.node.node_id, soft=False))
            else:
                options.update(num_cpus=1, scheduling_strategy="SPREAD")
            self._actors.append(_Actor(spec=spec, slot=slot, handle=actor_cls.options(**options).remote(spec)))
        self._sender = threading.Thread(target=self._send_loop, name="recsuite-ray-sender", daemon=True)
        self._sender.start()
        try:
            self.worker_info = self._wait_loaded()
            self.dispatch = self.dispatch or self._default_dispatch()
            if self.dispatch == "direct":
                self._open_channels()
        except BaseException:
            self._stop_sender()
            self._stop_collector()
            self._kill_all()
            self._disconnect()
            self._closed = True
            raise

    def _wait_loaded(self) -> list[dict[str, Any]]:
        ray = self._ray
        nice = self._nice if self._nice is not None else os.getpriority(os.PRIO_PROCESS, 0)
        refs = [a.handle.load.remote(nice) for a in self._actors]
        ready, pending = ray.wait(refs, num_returns=len(refs), timeout=self.start_timeout_s)
        if pending:
            late = self._actors[refs.index(pending[0])].spec.name
            raise BackendError(f"{late} was not placed and loaded within {self.start_timeout_s:.0f} s "
                               "(does the cluster have the CPUs/GPUs it needs free?)")
        infos = []
        for actor, ref in zip(self._actors, refs, strict=False):
            try:
                status, info = ray.get(ref)
            except Exception as exc:
                raise BackendError(f"{actor.spec.name} died while starting: {_first_line(exc)}") from None
            if status != "K":
                raise BackendError(f"{actor.spec.name} failed to load {actor.spec.backend!r}: {info['error']}")
            actor.pid = int(info.pop("pid", 0))
            infos.append(info)
        return infos

    def _default_dispatch(self) -> str:
        return "calls" if self.address.startswith("ray://") else "direct"

    @property
    def threads_per_worker(self) -> int:
        """Harness threads a worker of one lane wants: as for a local process, or, with Ray calls,
        enough for submits to queue and go together."""
        return THREADS_PER_RAY_WORKER if self.dispatch == "calls" else THREADS_PER_WORKER

    def _open_channels(self) -> None:
        """Connect to every actor's channel (:meth:`RayWorker.open_channel`), listening on its node's
        address, and start the collector of their replies. A watch call per actor stays pending:
        Ray fails it, with the reason, when the actor dies."""
        import multiprocessing as mp
        from multiprocessing import connection

        ray = self._ray
        authkey = os.urandom(32)
        calls = [a.handle.open_channel.remote(a.slot.node.ip if a.slot is not None else None, authkey, self._nodelay)
                 for a in self._actors]
        for actor, call in zip(self._actors, calls, strict=True):
            try:
                host, port = ray.get(call, timeout=self.start_timeout_s)
                sock = socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S)
                sock.settimeout(None)
                no_delay(sock.fileno(), self._nodelay)
                conn = connection.Connection(sock.detach())
                connection.answer_challenge(conn, authkey)
                connection.deliver_challenge(conn, authkey)
            except Exception as exc:
                raise BackendError(f"{actor.spec.name}: could not open its channel: {_first_line(exc)}") from None
            actor.conn = conn
            actor.watch = actor.handle.channel_closed.remote()
        self._wake_r, self._wake_w = mp.Pipe(duplex=False)
        self._collector = threading.Thread(target=self._collect, name="recsuite-ray-collector", daemon=True)
        self._collector.start()
        for actor in self._actors:
            actor.watch.future().add_done_callback(lambda f, actor=actor: self._watched(actor, f.exception()))

    def _collect(self) -> None:
        """Replies of every actor's channel to their futures; a channel that ends is left to its watch."""
        from multiprocessing import connection

        by_conn = {a.conn: a for a in self._actors}
        waiting: list[Any] = [self._wake_r, *by_conn]
        while True:
            for ready in connection.wait(waiting):
                if ready is self._wake_r:
                    return
                try:
                    msg = ready.recv_bytes()  # type: ignore[union-attr]  # connection.wait returns objects typed as wait's inputs; these are Connections
                except (EOFError, OSError):
                    waiting.remove(ready)
                    continue
                self._reply(by_conn[ready], msg)

    def _reply(self, actor: _Actor, msg: bytes) -> None:
        op = msg[:1]
        (job_id,) = ID.unpack_from(msg, 1)
        with self._lock:
            job = actor.jobs.pop(job_id, None)
            if job is None:
                return  # failed already (the actor was declared dead)
            done, n = job
            actor.outstanding -= n
            actor.held.discard(done)
        if op == b"R":
            _, tasks = OK.unpack_from(msg, 1)
            scores = np.frombuffer(msg, dtype=np.float32, offset=1 + OK.size)
            done.set_result(scores.reshape(-1, tasks) if tasks else scores)
        else:
            done.set_exception(BackendError(f"request failed in {actor.spec.name}: {msg[1 + ID.size:].decode()}"))

    def _watched(self, actor: _Actor, exc: BaseException | None) -> None:
        """An actor's watch returned: it died (``exc``, Ray's error) or its channel ended."""
        from ray.exceptions import RayActorError

        if isinstance(exc, RayActorError):
            self._lose(actor, _death_reason(exc))
        elif not self._closing:
            self._lose(actor, "its connection to the driver was lost")

    def _lose(self, actor: _Actor, reason: str) -> None:
        """Declare ``actor`` dead (unless closing): fail what it held, and every later submit."""
        with self._lock:
            if not actor.alive or self._closing:
                return
            actor.alive = False
            held = [done for done, _ in actor.jobs.values()]
            in_flight = sum(n for _, n in actor.jobs.values())
            actor.jobs.clear()
            actor.outstanding = 0
            actor.held.clear()
            actor.death = f"{actor.spec.name} (pid {actor.pid}) died ({reason}) with {in_flight} request(s) in flight"
            self._broken = self._broken or actor.death
        log.error("%s", actor.death)
        for done in held:
            if not done.done():
                done.set_exception(WorkerLost(actor.death))

    def attach(self, items: Batch) -> None:
        if items is self._items:
            return
        ray = self._ray
        shipped = [a for a in self._actors if a.spec.library is None]
        ref = ray.put((items.dense, tuple(items.sparse))) if shipped else None
        calls = [a.handle.attach.remote(None if a.spec.library is not None else ref, a.spec.library) for a in self._actors]
        for actor, call in zip(self._actors, calls, strict=False):
            try:
                rows = ray.get(call, timeout=self.start_timeout_s)
            except Exception as exc:
                raise BackendError(f"{actor.spec.name} could not take the items: {_first_line(exc)}") from None
            if rows != len(items):
                raise BackendError(f"{actor.spec.name} holds {rows} items, the driver {len(items)}")
        self._items_ref, self._items = ref, items

    def submit(self, worker: int, requests: Sequence[Request]) -> Future[np.ndarray]:
        """Send ``requests`` to worker ``worker``: over its channel (``direct``), or (``calls``) as
        an actor call at once while the worker has fewer than its depth of calls in flight, else,
        together with whatever else queued meanwhile, as one call when one of those returns."""
        done: Future[np.ndarray] = Future()
        n = len(requests)
        wire = [(r.dense, r.sparse) if isinstance(r, Batch) else list(r) for r in requests]
        with self._lock:
            if self._broken:
                done.set_exception(WorkerLost(self._broken))
                return done
            actor = self._actors[worker]
            actor.outstanding += n
            actor.held.add(done)
            actor.submits += 1
            if actor.conn is not None:
                job_id = self._next_id
                self._next_id += 1
                actor.jobs[job_id] = (done, n)
                try:
                    actor.conn.send_bytes(b"J" + pickle.dumps((job_id, wire), protocol=5))
                except OSError:
                    pass  # the actor is gone; its watch fails what it held
                return done
            actor.waiting.append((wire, n, done))
            if actor.calls >= actor.depth:
                return done
            entries = actor.take()
        self._call(actor, entries)
        return done

    def _call(self, actor: _Actor, entries: list[_Entry]) -> None:
        """One actor call carrying ``entries``; its reply settles each of them."""
        try:
            ref = actor.handle.run_many.remote([wire for wire, _, _ in entries])
            ref.future().add_done_callback(lambda f: self._settle(actor, entries, f))
        except Exception as exc:
            self._settle_error(actor, entries, exc)

    def _send_loop(self) -> None:
        """Sends the calls of submits that queued behind a worker's calls in flight (Ray's completion
        callbacks only hand them over: they should not submit tasks themselves)."""
        while (job := self._sends.get()) is not None:
            self._call(*job)

    def _settle(self, actor: _Actor, entries: list[_Entry], f: Future[Any]) -> None:
        exc = f.exception()
        if exc is not None:
            self._settle_error(actor, entries, exc)
            return
        got = f.result()
        with self._lock:
            actor.outstanding -= sum(n for _, n, _ in entries)
            for _, _, done in entries:
                actor.held.discard(done)
            self._next_call(actor)
        for (_, _, done), scores in zip(entries, got, strict=True):
            if done.done():
                continue
            if isinstance(scores, str):
                done.set_exception(BackendError(f"request failed in {actor.spec.name}: {scores}"))
            else:
                done.set_result(scores)

    def _next_call(self, actor: _Actor) -> None:
        """A call of ``actor`` returned (the caller holds the lock): send what waits behind it."""
        actor.calls -= 1
        if actor.waiting and actor.alive and not self._closing and actor.calls < actor.depth:
            self._sends.put((actor, actor.take()))

    def _settle_error(self, actor: _Actor, entries: list[_Entry], exc: BaseException) -> None:
        from ray.exceptions import RayActorError

        lost = isinstance(exc, RayActorError)
        n = sum(k for _, k, _ in entries)
        failed = [done for _, _, done in entries]
        with self._lock:
            actor.outstanding -= n
            if lost and actor.alive and not self._closing:
                actor.alive = False
                in_flight = actor.outstanding + n
                actor.death = f"{actor.spec.name} (pid {actor.pid}) died ({_death_reason(exc)}) with {in_flight} request(s) in flight"
                self._broken = self._broken or actor.death
                log.error("%s", actor.death)
            if not actor.alive:  # what waited for this actor's calls goes nowhere now
                failed += [done for _, _, done in actor.waiting]
                actor.outstanding -= sum(k for _, k, _ in actor.waiting)
                actor.waiting.clear()
            for done in failed:
                actor.held.discard(done)
            self._next_call(actor)
            death = actor.death
        for done in failed:
            if done.done():
                continue
            if self._closing:
                done.set_exception(BackendError("the placement was closed"))
            elif not actor.alive:
                done.set_exception(WorkerLost(death))
            else:
                cause = getattr(exc, "cause", None) or exc
                done.set_exception(BackendError(f"request failed in {actor.spec.name}: {type(cause).__name__}: {_first_line(cause)}"))

    def outstanding(self) -> list[int]:
        return [a.outstanding for a in self._actors]

    def ask(self, worker: int, method: str, *args: Any) -> Any:
        actor = self._actors[worker]
        if not actor.alive:
            raise WorkerLost(actor.death)
        return self._ray.get(actor.handle.call.remote(method, args), timeout=self.start_timeout_s)

    def calls_per_submit(self) -> float:
        """Actor calls sent per submit taken, over every worker since start (1.0: none coalesced)."""
        submits = sum(a.submits for a in self._actors)
        return sum(a.sent for a in self._actors) / submits if submits else 1.0

    def pids(self) -> list[int]:
        """Each worker's process id on its node, in index order."""
        return [a.pid for a in self._actors]

    def kill(self, worker: int) -> None:
        """Kill worker ``worker``'s actor at once, as a crash would (for tests and drills)."""
        self._ray.kill(self._actors[worker].handle, no_restart=True)

    def nodes(self) -> int:
        ids = {a.slot.node.node_id for a in self._actors if a.slot is not None}
        return max(1, len(ids))

    def info(self) -> PlacementInfo:
        base = super().info()
        extra: dict[str, Any] = {"cluster": self.address} if self.address else {}
        if self.dispatch is not None:
            extra["dispatch"] = self.dispatch
        return PlacementInfo(name=base.name, nodes=base.nodes, devices_per_node=base.devices_per_node, workers=base.workers,
                             devices=base.devices, round_trip=base.round_trip, lost=base.lost, extra=extra)

    def dead(self) -> list[str]:
        return [a.death for a in self._actors if not a.alive]

    def close(self) -> None:
        if self._closed:
            self._disconnect()  # connected by on_cluster, never started
            return
        self._closed = True
        with self._lock:
            self._closing = True
        ray = self._ray
        live = [a for a in self._actors if a.alive]
        for a in self._actors:
            if a.conn is not None:
                try:
                    a.conn.send_bytes(b"Q")
                except OSError:
                    pass
        try:
            ray.wait([a.handle.close.remote() for a in live], num_returns=len(live), timeout=CLOSE_TIMEOUT_S)
        except Exception:
            pass
        self._kill_all()
        self._stop_sender()
        self._stop_collector()
        with self._lock:
            held = [f for a in self._actors for f in a.held]
            for a in self._actors:
                a.held.clear()
                a.waiting.clear()
                a.jobs.clear()
        for f in held:
            if not f.done():
                f.set_exception(BackendError("the placement was closed"))
        self._items_ref = None
        self._items = None
        self._disconnect()

    def _stop_collector(self) -> None:
        collector, self._collector = self._collector, None
        if collector is not None:
            self._wake_w.send_bytes(b"")
            collector.join(CLOSE_TIMEOUT_S)
        for a in self._actors:
            if a.conn is not None:
                a.conn.close()
                a.conn = None
        for end in (self._wake_r, self._wake_w):
            if end is not None:
                end.close()
        self._wake_r = self._wake_w = None

    def _stop_sender(self) -> None:
        sender, self._sender = self._sender, None
        if sender is not None:
            self._sends.put(None)
            sender.join(CLOSE_TIMEOUT_S)

    def _kill_all(self) -> None:
        for a in self._actors:
            try:
                self._ray.kill(a.handle, no_restart=True)
            except Exception:
                pass

    def _disconnect(self) -> None:
        if self._connected_here:
            self._connected_here = False
            self._ray.shutdown()


def placed(config: Any, backend_cls: type[Backend]) -> tuple[Any, int, int]:
    """The backend of a ``--cluster`` run (``config`` a ``RunConfig``): a
    :class:`~suite.placement.backend.PlacedBackend` over one Ray actor per GPU (or node) of the
    cluster, and the (intra-op threads of worker 0, harness threads) it runs with.

    Raises:
        BackendUnavailableError: Ray is missing, the cluster does not answer or has nothing to run
            the backend on.
    """
    from suite.placement.backend import PlacedBackend

    inner = BackendConfig(model=config.model, threads=config.threads, precision=config.precision, options=config.backend_options)
    # A thread-safe GPU backend runs as many batches at once as it has lanes, as --devices does.
    gpu = backend_cls.device_kind == "cuda"
    lanes = int(inner.option("lanes", str(backend_cls.default_workers))) if gpu and backend_cls.thread_safe else 1
    placement, specs = RayPlacement.on_cluster(config.cluster, backend_cls.name, inner, concurrency=lanes)
    workers = (placement.threads_per_worker + lanes - 1) * len(specs)
    # Network division: LoadGen's queries go one by one, with their rows, from as many threads.
    network = workers if config.cluster_mode == "network" else 0
    return PlacedBackend(backend_cls.name, inner, placement, specs, network=network), specs[0].config.threads, workers


def renice(nice: int, *, threads: bool = True) -> int:
    """Set this process's (``threads``: every thread's, as Linux keeps a nice value per thread;
    else the calling thread's, which threads it starts inherit) nice value to ``nice`` where
    allowed (lowering it takes CAP_SYS_NICE or RLIMIT_NICE); the calling thread's value after."""
    for tid in _threads(threads):
        try:
            os.setpriority(os.PRIO_PROCESS, tid, nice)
        except OSError:
            pass  # not allowed (or the thread ended): the value stays, and the record says which
    return os.getpriority(os.PRIO_PROCESS, _threads(False)[0])


def _threads(every: bool) -> list[int]:
    """This process's thread ids (``every``), or the calling thread's; [0] where /proc is missing."""
    if not os.path.isdir("/proc/self/task"):
        return [0]
    return [int(t) for t in os.listdir("/proc/self/task")] if every else [threading.get_native_id()]


def pin(cores: Sequence[int], *, threads: bool = True) -> None:
    """Pin this process (``threads``: every thread of it, as Linux keeps affinity per thread; else
    the calling thread, whose new threads inherit it) to ``cores``; nothing when empty.

    Raises:
        OSError: a core this host lacks.
    """
    if not cores:
        return
    for tid in _threads(threads):
        try:
            os.sched_setaffinity(tid, set(cores))
        except ProcessLookupError:
            pass  # the thread ended meanwhile


def no_delay(fd: int, on: bool = True) -> bool:
    """Turn Nagle's algorithm off (``on``) on the TCP socket ``fd``; whether it is off now.

    A channel carries small messages, several in flight: with Nagle's algorithm on, a reply sent
    while the previous one is unacknowledged waits for the driver's delayed ACK (up to 40 ms on
    Linux), which was the Server p99 gap between Ray actors and local processes (whose pipes are
    Unix sockets) at 1-2 ms per batch (``benchmarks/ray_dispatch.py``). Every message is one
    ``send`` (``multiprocessing.connection`` joins header and payload up to 16 KB), so nothing is
    sent in pieces."""
    sock = socket.socket(fileno=os.dup(fd))
    try:
        if on:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
    finally:
        sock.close()


def _node_address() -> str:
    import ray

    return str(ray.util.get_node_ip_address())  # type: ignore[no-untyped-call]  # Ray's function has no annotations


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


#: Words in Ray's account of an actor's death (a paragraph) and what the record says instead.
_REASONS = (
    ("node has died", "its node was lost"),
    ("ray.kill", "killed by ray.kill"),
    ("ActorUnavailableError", "unreachable: its node or its connection was lost"),
    ("unexpectedly", "its process exited unexpectedly"),
)


def _death_reason(exc: BaseException) -> str:
    """Ray's reason an actor died, in a few words."""
    text = f"{type(exc).__name__} {exc}".lower()
    return next((reason for marker, reason in _REASONS if marker.lower() in text), type(exc).__name__)
