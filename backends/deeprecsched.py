"""DeepRecSched: split queries across single-threaded CPU workers, offload large ones whole.

The scheduler of DeepRecSys (Gupta et al., ISCA 2020; ``shared/reference/deeprecsys.md`` 3), made
real: a query of k items with k >= Q goes whole to the accelerator backend; a smaller one is cut
into ceil(k / B) requests of B items (the last holds the remainder) that run in parallel on the
CPU workers, and the query completes when its last request does.

The harness hands this backend one whole query per ``predict`` call, from several threads (see
``Backend.queries_in_flight``). Each call plans its requests, queues them and waits.

CPU workers (``pool=process``, the default) are spawned processes, each running one instance of the
CPU backend with one intra-op thread, pinned to one core where the OS allows. The dataset's arrays
are copied once into one shared-memory block (``attach_items``); a request then carries only row
ranges, and a reply only the request's scores, so neither the GIL nor pickling arrays caps
throughput. The parent sends each request to the worker with the fewest requests outstanding
and one collector thread gathers the replies. A worker that dies fails the queries it held with a
:class:`~suite.errors.BackendError` naming it, and every query after them: a run that lost a worker
is not the run that was asked for, and failing fast records the death even when the worker held
nothing at the time. The harness completes failed queries, so the run ends and is marked failed.
``pool=thread`` runs the workers as threads of this process instead (compared in the README).

Workers are spawned, not forked (a fork of a process whose OpenMP runtime has started can hang), so
a script that loads this backend needs the usual ``if __name__ == "__main__":`` guard.
"""

from __future__ import annotations

import abc
import dataclasses
import json
import logging
import multiprocessing as mp
import os
import pickle
import queue
import signal
import struct
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from multiprocessing import connection
from multiprocessing.shared_memory import SharedMemory
from typing import Any

import numpy as np

from suite import __version__
from suite.backends import REGISTRY, get_backend
from suite.backends.base import Backend, BackendConfig, BackendInfo, Option
from suite.datasets.batch import Batch
from suite.datasets.queries import MAX_QUERY_ITEMS
from suite.errors import BackendError, ConfigError, one_of
from suite.models import ModelSpec

log = logging.getLogger(__name__)

POOLS = ("process", "thread")
#: ``batch_items`` 0: every query is one request (the static baseline); ``offload_items`` 0: never offload.
WHOLE_QUERY = 0
NO_OFFLOAD = 0
#: Seconds a worker may take to start (import its framework, build the model).
START_TIMEOUT_S = 600.0
#: An accelerator thread takes the offloaded queries waiting for it as one batch until it holds this
#: many items: one query per call would leave the accelerator to the host's per-call overhead.
ACCEL_BATCH_ITEMS = 2048

# Messages between the parent and a worker start with one op byte. A job (b"J") is the requests of
# one query that went to one worker, pickled as (job id, [request, ...]) where a request is a list of
# (lo, hi) dataset row spans, or (dense, sparse) arrays for a batch not cut from the shared dataset.
# The worker runs each request as its own predict call, in order, and replies once (b"R": job id,
# tasks, then every request's float32 scores back to back): the query waits for its last request
# anyway, so one reply per job loses nothing and saves the parent a wake-up per request.
_OK = struct.Struct("<qI")  # job id, tasks (0: scores are 1-D)
_ID = struct.Struct("<q")


@dataclass(frozen=True, kw_only=True)
class SchedConfig:
    """The scheduler's setting, recorded in every result.

    Attributes:
        cpu_backend: the registry backend each CPU worker runs, with one thread.
        accelerator: the registry backend that takes offloaded queries whole, or ``"none"``.
        cpu_workers: CPU workers, one core each.
        batch_items: B, items per CPU request; 0 runs every query as one request.
        offload_items: Q, queries of at least this many items go to the accelerator; 0 never.
        pool: ``process`` (spawned workers, shared memory) or ``thread`` (threads of this process).
        pin: pin each worker process to one core, where the OS allows.
    """

    cpu_backend: str = "torch-cpu"
    accelerator: str = "none"
    cpu_workers: int
    batch_items: int = WHOLE_QUERY
    offload_items: int = NO_OFFLOAD
    pool: str = "process"
    pin: bool = True

    #: The keys ``--option`` accepts (the fields above but ``cpu_workers``, which is ``--threads``).
    OPTIONS = ("accelerator", "batch_items", "cpu_backend", "offload_items", "pin", "pool")

    def __post_init__(self) -> None:
        inner = sorted(set(REGISTRY) - {"deeprecsched"})
        one_of("cpu_backend", self.cpu_backend, inner)
        one_of("accelerator", self.accelerator, ["none", *inner])
        one_of("pool", self.pool, POOLS)
        if self.cpu_workers < 1:
            raise ConfigError(f"'cpu_workers' must be >= 1 (got {self.cpu_workers!r})")
        if self.batch_items < 0:
            raise ConfigError(f"'batch_items' must be >= 0 (got {self.batch_items!r})")
        if self.offload_items < 0:
            raise ConfigError(f"'offload_items' must be >= 0 (got {self.offload_items!r})")
        if self.offload_items and self.accelerator == "none":
            raise ConfigError(f"'offload_items' needs an accelerator (got {self.offload_items!r} with accelerator 'none')")

    @classmethod
    def from_backend_config(cls, config: BackendConfig) -> SchedConfig:
        """Parse ``config.options``; ``config.threads`` is the number of CPU workers (0: one per core)."""
        DeepRecSchedBackend.check_options(config.options)
        values: dict[str, Any] = {}
        for key, text in config.options:
            if key in ("batch_items", "offload_items"):
                try:
                    values[key] = int(text)
                except ValueError:
                    raise ConfigError(f"'{key}' must be an integer (got {text!r})") from None
            elif key == "pin":
                one_of("pin", text, ["0", "1", "false", "true"])
                values[key] = text in ("1", "true")
            else:
                values[key] = text
        return cls(cpu_workers=config.resolved_threads, **values)

    def options(self) -> tuple[tuple[str, str], ...]:
        """This setting as ``--option`` pairs (without ``cpu_workers``, which is ``--threads``)."""
        return tuple((k, str(int(v)) if isinstance(v, bool) else str(v)) for k, v in sorted(self.to_dict().items())
                     if k in self.OPTIONS)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def offloads(self, items: int) -> bool:
        """Whether a query of ``items`` items goes whole to the accelerator (k >= Q)."""
        return self.offload_items != NO_OFFLOAD and items >= self.offload_items

    def route(self, items: int) -> tuple[int, ...]:
        """Where a query of ``items`` items goes: ``()`` for the accelerator, else its CPU request sizes.

        Two settings with the same route for every query size of a run are the same schedule.
        """
        if self.offloads(items):
            return ()
        return tuple(hi - lo for lo, hi in split(items, self.batch_items))


def split(items: int, batch_items: int) -> list[tuple[int, int]]:
    """The ceil(k / B) requests of a k-item query as (start, stop) item ranges; the last holds the rest.

    ``batch_items`` 0 keeps the query whole.
    """
    if batch_items == WHOLE_QUERY or items <= batch_items:
        return [(0, items)]
    return [(lo, min(lo + batch_items, items)) for lo in range(0, items, batch_items)]


def cut_spans(spans: Sequence[tuple[int, int]], batch_items: int) -> list[list[tuple[int, int]]]:
    """Dataset row spans (one query's, possibly several runs) cut into requests of ``batch_items`` rows."""
    total = sum(hi - lo for lo, hi in spans)
    pieces: list[list[tuple[int, int]]] = []
    for start, stop in split(total, batch_items):
        piece: list[tuple[int, int]] = []
        pos = 0
        for lo, hi in spans:
            a, b = max(lo, lo + start - pos), min(hi, lo + stop - pos)
            if a < b:
                piece.append((a, b))
            pos += hi - lo
        pieces.append(piece)
    return pieces


class _Call:
    """One ``predict`` call waiting for its requests."""

    __slots__ = ("done", "error", "parts", "remaining", "sizes")

    def __init__(self, sizes: list[int]) -> None:
        self.parts: list[np.ndarray | None] = [None] * len(sizes)
        #: Items of each request, in order.
        self.sizes = sizes
        self.remaining = len(sizes)
        self.error: str | None = None
        self.done = threading.Event()

    def finish(self, slot: int, scores: np.ndarray) -> None:
        self.parts[slot] = scores
        self.remaining -= 1
        if self.remaining == 0:
            self.done.set()

    def fail(self, message: str) -> None:
        if self.error is None:
            self.error = message
        self.done.set()


#: A request: the slot of its scores in the call, and either dataset row spans or the rows themselves.
_Piece = tuple[int, "list[tuple[int, int]] | Batch"]


class _Pool(abc.ABC):
    """CPU workers that run requests and complete calls."""

    def __init__(self, sched: SchedConfig, model: ModelSpec, precision: str) -> None:
        self.sched = sched
        self.model = model
        self.precision = precision
        self.worker_info: dict[str, Any] = {}
        self.requests = 0

    @abc.abstractmethod
    def start(self) -> None: ...

    @abc.abstractmethod
    def attach(self, items: Batch) -> None: ...

    @abc.abstractmethod
    def submit(self, call: _Call, pieces: list[_Piece]) -> None: ...

    @abc.abstractmethod
    def close(self) -> None: ...

    def pids(self) -> list[int]:
        return []

    def dead(self) -> list[str]:
        return []


class _ThreadPool(_Pool):
    """Workers as threads sharing one CPU backend (which must be thread-safe), fed by one queue."""

    def start(self) -> None:
        cls = get_backend(self.sched.cpu_backend)
        if not cls.thread_safe:
            raise ConfigError(f"'pool' thread needs a thread-safe cpu_backend (got {self.sched.cpu_backend!r})")
        self._inner = cls(BackendConfig(model=self.model, threads=1, precision=self.precision))
        self._inner.load()
        self.worker_info = self._inner.info().to_dict()
        self._queue: queue.SimpleQueue[tuple[_Call, int, Batch] | None] = queue.SimpleQueue()
        self._items: Batch | None = None
        self._threads = [
            threading.Thread(target=self._work, name=f"recsuite-cpu-thread-{i}", daemon=True)
            for i in range(self.sched.cpu_workers)
        ]
        for t in self._threads:
            t.start()

    def attach(self, items: Batch) -> None:
        self._items = items

    def submit(self, call: _Call, pieces: list[_Piece]) -> None:
        for slot, what in pieces:
            if isinstance(what, Batch):
                batch = what
            else:
                assert self._items is not None
                batch = Batch.of_spans(self._items, what)
            self._queue.put((call, slot, batch))
        self.requests += len(pieces)

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            call, slot, batch = job
            try:
                call.finish(slot, self._inner.predict(batch))
            except Exception as exc:
                call.fail(f"CPU request failed: {type(exc).__name__}: {exc}")

    def close(self) -> None:
        for _ in self._threads:
            self._queue.put(None)
        for t in self._threads:
            t.join()
        self._inner.close()


@dataclass
class _Worker:
    index: int
    process: Any  # multiprocessing.process.BaseProcess
    conn: connection.Connection
    alive: bool = True
    outstanding: int = 0
    death: str = ""


class _ProcessPool(_Pool):
    """Spawned worker processes fed row ranges of a shared-memory copy of the dataset."""

    def start(self) -> None:
        ctx = mp.get_context("spawn")
        cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        self._lock = threading.Lock()
        self._owner: dict[int, tuple[_Call, list[int], _Worker]] = {}
        self._next_id = 0
        self._shm: SharedMemory | None = None
        self._items: Batch | None = None
        self._workers: list[_Worker] = []
        self._open = True
        #: The first death, once a worker has died: every later query fails with it.
        self._broken = ""
        for i in range(self.sched.cpu_workers):
            core = cores[i % len(cores)] if self.sched.pin and cores else None
            parent, child = ctx.Pipe(duplex=True)
            process = ctx.Process(
                target=_worker_main,
                args=(i, self.sched.cpu_backend, self.model, self.precision, child, core),
                name=f"recsuite-cpu-worker-{i}",
                daemon=True,
            )
            process.start()
            child.close()
            self._workers.append(_Worker(index=i, process=process, conn=parent))
        try:
            for w in self._workers:
                self.worker_info = self._wait_ready(w)
        except BaseException:
            self._stop_processes(grace_s=0)
            for w in self._workers:
                w.conn.close()
            raise
        self._wake_r, self._wake_w = mp.Pipe(duplex=False)
        self._collector = threading.Thread(target=self._collect, name="recsuite-collector", daemon=True)
        self._collector.start()

    def _wait_ready(self, w: _Worker) -> dict[str, Any]:
        ready = connection.wait([w.conn, w.process.sentinel], timeout=START_TIMEOUT_S)
        if w.conn in ready:
            try:
                msg = w.conn.recv_bytes()
            except EOFError:
                msg = b""
            if msg[:1] == b"K":
                info: dict[str, Any] = json.loads(msg[1:])
                return info
            if msg[:1] == b"F":
                raise BackendError(f"CPU worker {w.index} failed to load: {msg[1:].decode()}")
        if not ready:
            raise BackendError(f"CPU worker {w.index} did not start within {START_TIMEOUT_S:.0f} s")
        w.process.join(1)
        raise BackendError(f"CPU worker {w.index} exited while loading ({_exit_text(w.process.exitcode)})")

    def attach(self, items: Batch) -> None:
        if items is self._items:
            return
        arrays = [items.dense, *items.sparse]
        layout = []
        offset = 0
        for a in arrays:
            offset = -(-offset // 64) * 64
            layout.append((offset, a.shape, a.dtype.str))
            offset += a.nbytes
        shm = SharedMemory(create=True, size=max(offset, 1))
        for a, (off, shape, dtype) in zip(arrays, layout, strict=False):
            np.ndarray(shape, dtype, buffer=shm.buf, offset=off)[...] = a
        message = b"A" + pickle.dumps((shm.name, layout))
        with self._lock:
            for w in self._workers:
                if w.alive:
                    self._send(w, message)
            old, self._shm, self._items = self._shm, shm, items
        if old is not None:
            _release(old)

    def submit(self, call: _Call, pieces: list[_Piece]) -> None:
        with self._lock:
            if self._broken:
                call.fail(self._broken)
                return
            jobs: dict[int, list[_Piece]] = {}
            for piece in pieces:
                w = min(self._workers, key=lambda w: w.outstanding)
                w.outstanding += 1
                jobs.setdefault(w.index, []).append(piece)
            for index, job in jobs.items():
                w = self._workers[index]
                job_id = self._next_id
                self._next_id += 1
                requests = [(what.dense, what.sparse) if isinstance(what, Batch) else what for _, what in job]
                self._owner[job_id] = (call, [slot for slot, _ in job], w)
                self._send(w, b"J" + pickle.dumps((job_id, requests), protocol=5))
            self.requests += len(pieces)

    def _send(self, w: _Worker, message: bytes) -> None:
        try:
            w.conn.send_bytes(message)
        except OSError:
            pass  # the worker is dead; the collector fails what it held when its sentinel fires

    def _collect(self) -> None:
        by_conn = {w.conn: w for w in self._workers}
        by_sentinel = {w.process.sentinel: w for w in self._workers}
        waiting: list[Any] = [self._wake_r, *by_conn, *by_sentinel]
        while True:
            for ready in connection.wait(waiting):
                if ready is self._wake_r:
                    return
                if ready in by_sentinel:
                    w = by_sentinel[ready]
                    waiting.remove(ready)
                    self._bury(w)
                    continue
                w = by_conn[ready]  # type: ignore[index]
                try:
                    msg = ready.recv_bytes()  # type: ignore[union-attr]
                except (EOFError, OSError):
                    waiting.remove(ready)
                    continue
                self._reply(w, msg)

    def _reply(self, w: _Worker, msg: bytes) -> None:
        op = msg[:1]
        if op == b"R":
            job_id, tasks = _OK.unpack_from(msg, 1)
            scores = np.frombuffer(msg, dtype=np.float32, offset=1 + _OK.size)
            if tasks:
                scores = scores.reshape(-1, tasks)
            with self._lock:
                call, slots, _ = self._owner.pop(job_id)
                w.outstanding -= len(slots)
            ends = np.cumsum([0, *(call.sizes[slot] for slot in slots)])
            for slot, lo, hi in zip(slots, ends[:-1], ends[1:], strict=False):
                call.finish(slot, scores[lo:hi])
        elif op == b"E":
            (job_id,) = _ID.unpack_from(msg, 1)
            with self._lock:
                call, slots, _ = self._owner.pop(job_id)
                w.outstanding -= len(slots)
            call.fail(f"CPU request failed in worker {w.index}: {msg[1 + _ID.size:].decode()}")

    def _bury(self, w: _Worker) -> None:
        w.process.join(1)
        with self._lock:
            if not w.alive:
                return
            w.alive = False
            held = [(req, own) for req, own in self._owner.items() if own[2] is w]
            w.death = (
                f"CPU worker {w.index} (pid {w.process.pid}) died ({_exit_text(w.process.exitcode)}) "
                f"with {sum(len(own[1]) for _, own in held)} request(s) in flight"
            )
            for req, _ in held:
                del self._owner[req]
            w.outstanding = 0
            self._broken = self._broken or w.death
        if self._open:
            log.error("%s", w.death)
        for _, (call, _slots, _w) in held:
            call.fail(w.death)

    def pids(self) -> list[int]:
        return [w.process.pid for w in self._workers]

    def dead(self) -> list[str]:
        return [w.death for w in self._workers if not w.alive]

    def close(self) -> None:
        self._open = False
        with self._lock:
            for w in self._workers:
                if w.alive:
                    self._send(w, b"Q")
        self._stop_processes(grace_s=5)
        self._wake_w.send_bytes(b"")
        self._collector.join()
        for w in self._workers:  # after the collector is gone: it waits on them
            w.conn.close()
        with self._lock:
            for call, _slots, _w in self._owner.values():
                call.fail("the scheduler was closed")
            self._owner.clear()
        if self._shm is not None:
            _release(self._shm)
            self._shm = None

    def _stop_processes(self, grace_s: float) -> None:
        for w in self._workers:
            w.process.join(grace_s)
            if w.process.is_alive():
                w.process.kill()  # it ignores SIGTERM
                w.process.join(5)


def _release(shm: SharedMemory) -> None:
    shm.close()
    try:
        shm.unlink()
    except FileNotFoundError:
        pass


def _exit_text(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def _worker_main(index: int, cpu_backend: str, model: ModelSpec, precision: str,
                 conn: connection.Connection, core: int | None) -> None:
    """A CPU worker process: load one single-threaded CPU backend, then answer requests until told to quit."""
    # The parent handles Ctrl-C and SIGTERM (a terminal or a service manager signals the whole
    # process group) and closes the pool; a worker whose parent is gone leaves on EOF.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if core is not None:
        try:
            os.sched_setaffinity(0, {core})
        except OSError:
            pass
    try:
        backend = get_backend(cpu_backend)(BackendConfig(model=model, threads=1, precision=precision))
        backend.load()
        info = backend.info().to_dict()
    except Exception as exc:
        conn.send_bytes(b"F" + f"{type(exc).__name__}: {exc}".encode())
        return
    info["pinned_core"] = core
    conn.send_bytes(b"K" + json.dumps(info).encode())
    shm: SharedMemory | None = None
    items: Batch | None = None
    batch: Batch | None = None
    while True:
        try:
            msg = conn.recv_bytes()
        except (EOFError, OSError):
            break  # the parent is gone
        op = msg[:1]
        if op == b"Q":
            break
        if op == b"A":
            name, layout = pickle.loads(msg[1:])
            items = batch = None
            if shm is not None:
                _close_quietly(shm)
            shm = SharedMemory(name=name)
            arrays = [np.ndarray(shape, np.dtype(dtype), buffer=shm.buf, offset=off) for off, shape, dtype in layout]
            items = Batch(dense=arrays[0], sparse=tuple(arrays[1:]))
            continue
        job_id, requests = pickle.loads(msg[1:])
        try:
            parts = []
            for request in requests:
                if isinstance(request, list):
                    assert items is not None, "a job before the dataset was attached"
                    batch = Batch.of_spans(items, request)
                else:
                    batch = Batch(dense=request[0], sparse=request[1])
                parts.append(np.ascontiguousarray(backend.predict(batch), dtype=np.float32))
            tasks = parts[0].shape[1] if parts[0].ndim == 2 else 0
            conn.send_bytes(b"".join([b"R", _OK.pack(job_id, tasks), *(p.tobytes() for p in parts)]))
        except Exception as exc:
            conn.send_bytes(b"E" + _ID.pack(job_id) + f"{type(exc).__name__}: {exc}".encode())
    backend.close()
    items = batch = None  # drop the last views before closing the mapping
    if shm is not None:
        _close_quietly(shm)
    # Nothing is left to write, and the interpreter's shutdown with torch loaded takes seconds on a
    # busy machine (4 s measured on 2 shared cores): the pool's close, and so a stop on Ctrl-C, would wait.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _close_quietly(shm: SharedMemory) -> None:
    try:
        shm.close()
    except BufferError:
        pass  # a view is still alive somewhere; the mapping goes with the process


class _Warm:
    """A warm-up call queued to the accelerator threads (not a query)."""

    __slots__ = ("run",)

    def __init__(self, run: Callable[[], None]) -> None:
        self.run = run


def _answer(jobs: list[tuple[Any, Future[np.ndarray]]], compute: Callable[[], list[np.ndarray]]) -> None:
    """Resolve each job's future with its part of ``compute()``, or all with its exception."""
    try:
        parts = compute()
    except BaseException as exc:
        for _, f in jobs:
            f.set_exception(exc)
        return
    for (_, f), part in zip(jobs, parts, strict=False):
        f.set_result(part)


def _inner() -> tuple[str, ...]:
    """The backends the scheduler can run: every registered one but itself (tests add stubs)."""
    return tuple(sorted(set(REGISTRY) - {"deeprecsched"}))


class DeepRecSchedBackend(Backend):
    """The DeepRecSched scheduler over a CPU backend and an optional accelerator backend.

    Options (``--option KEY=VALUE``): ``cpu_backend`` (default torch-cpu), ``accelerator`` (none),
    ``batch_items`` B (0: whole query), ``offload_items`` Q (0: never), ``pool`` (process | thread),
    ``pin`` (1 | 0). ``--threads`` is the number of CPU workers (0: one per available core).
    """

    name = "deeprecsched"
    device_kind = "inner"
    tunable = ("batch_items", "offload_items")
    thread_safe = True
    options = {
        "accelerator": Option("the backend that takes offloaded queries whole", choices_of=lambda: ("none", *_inner())),
        "batch_items": Option("B: items per CPU request (0: the whole query)", lo=0, hi=MAX_QUERY_ITEMS),
        "cpu_backend": Option("the backend each CPU worker runs, one thread each", choices_of=lambda: _inner()),
        "offload_items": Option("Q: queries of at least this many items go to the accelerator (0: never)",
                                lo=0, hi=MAX_QUERY_ITEMS),
        "pin": Option("pin each worker process to one core", choices=("0", "1", "false", "true")),
        "pool": Option("spawned worker processes (shared memory) or threads of this process", choices=POOLS),
    }

    def __init__(self, config: BackendConfig) -> None:
        super().__init__(config)
        self.sched = SchedConfig.from_backend_config(config)
        self._pool: _Pool | None = None
        self._accel: Backend | None = None
        self._accel_threads: list[threading.Thread] = []
        self._accel_queue: queue.SimpleQueue[tuple[Batch, Future[np.ndarray]] | None] = queue.SimpleQueue()
        self._items: Batch | None = None
        self._stats_lock = threading.Lock()
        self.stats = {"cpu_queries": 0, "cpu_requests": 0, "accelerator_queries": 0}

    def load(self) -> None:
        s = self.sched
        pool_cls = _ProcessPool if s.pool == "process" else _ThreadPool
        pool = pool_cls(s, self.config.model, self.config.precision)
        pool.start()
        self._pool = pool
        if s.accelerator != "none":
            self._accel = get_backend(s.accelerator)(
                BackendConfig(model=self.config.model, precision=self.config.precision)
            )
            self._accel.load()
            # Offloaded queries run on the backend's own threads, which live as long as it does: an
            # accelerator keeps per-thread state (torch-cuda: streams, pinned buffers, library
            # handles), and the harness's threads are new in every LoadGen run (suite tune runs dozens).
            workers = self._accel.default_workers if self._accel.thread_safe else 1
            self._accel_threads = [
                threading.Thread(target=self._accel_loop, name=f"recsuite-accel-{i}", daemon=True) for i in range(workers)
            ]
            for t in self._accel_threads:
                t.start()

    def queries_in_flight(self) -> int:
        # Enough queries in flight to keep every worker busy when each query is one request (B=0),
        # and one per accelerator call on top.
        return 2 * self.sched.cpu_workers + (2 if self._accel is not None else 0)

    def attach_items(self, items: Batch) -> None:
        assert self._pool is not None, "load() first"
        self._pool.attach(items)
        self._items = items
        if self._accel_threads:
            self._warm_accelerator(items)

    def _warm_accelerator(self, items: Batch) -> None:
        """Run a largest batch once on every accelerator thread, so no timed query pays for a
        thread's first call (buffers sized, handles made)."""
        assert self._accel is not None
        n = len(self._accel_threads)
        largest = Batch.of_spans(items, [(0, min(len(items), ACCEL_BATCH_ITEMS + MAX_QUERY_ITEMS))])
        barrier = threading.Barrier(n)
        accel = self._accel

        def warm() -> None:
            barrier.wait(START_TIMEOUT_S)  # every thread holds one of the n calls at once: each runs one
            accel.predict(largest)

        futures = []
        for _ in range(n):
            done: Future[np.ndarray] = Future()
            self._accel_queue.put((_Warm(warm), done))
            futures.append(done)
        for f in futures:
            f.result()

    def _accel_loop(self) -> None:
        """One accelerator thread: take the offloaded queries waiting (up to ``ACCEL_BATCH_ITEMS``
        items) as one batch, and answer each its own scores."""
        q = self._accel_queue
        while True:
            job = q.get()
            if job is None:
                return
            if isinstance(job[0], _Warm):
                _answer([job], lambda: [job[0].run()])  # type: ignore[func-returns-value]
                continue
            jobs = [job]
            items = len(job[0])
            while items < ACCEL_BATCH_ITEMS:
                try:
                    more = q.get_nowait()
                except queue.Empty:
                    break
                if more is None or isinstance(more[0], _Warm):
                    q.put(more)  # for the next get: a stop, or another thread's warm-up
                    break
                jobs.append(more)
                items += len(more[0])
            _answer(jobs, lambda: self._accel_predict([b for b, _ in jobs]))

    def _accel_predict(self, batches: list[Batch]) -> list[np.ndarray]:
        assert self._accel is not None
        if len(batches) == 1:
            return [self._accel.predict(batches[0])]
        if all(b.source is not None and b.source is self._items and b.spans for b in batches):
            merged = Batch.of_spans(self._items, [span for b in batches for span in b.spans])  # type: ignore[arg-type]
        else:
            merged = Batch(dense=np.concatenate([b.dense for b in batches]),
                           sparse=tuple(np.concatenate(t) for t in zip(*(b.sparse for b in batches), strict=False)))
        scores = self._accel.predict(merged)
        return np.split(scores, np.cumsum([len(b) for b in batches[:-1]]))

    def retune(self, *, batch_items: int, offload_items: int) -> None:
        """Change B and Q between runs (``suite tune``); the worker pool stays up."""
        self.sched = dataclasses.replace(self.sched, batch_items=batch_items, offload_items=offload_items)

    def worker_pids(self) -> list[int]:
        """Process ids of the CPU workers (empty for the thread pool)."""
        return self._pool.pids() if self._pool is not None else []

    def predict(self, batch: Batch) -> np.ndarray:
        s = self.sched
        pool = self._pool
        assert pool is not None, "load() first"
        k = len(batch)
        if self._accel is not None and s.offloads(k):
            with self._stats_lock:
                self.stats["accelerator_queries"] += 1
            done: Future[np.ndarray] = Future()
            self._accel_queue.put((batch, done))
            return done.result()
        pieces: list[_Piece]
        if batch.source is not None and batch.source is self._items and batch.spans:
            pieces = list(enumerate(cut_spans(batch.spans, s.batch_items)))
        else:
            # Not cut from the shared dataset (a direct call): the rows travel with the request.
            pieces = [(i, Batch.of_spans(batch, [(lo, hi)])) for i, (lo, hi) in enumerate(split(k, s.batch_items))]
        call = _Call([len(p) if isinstance(p, Batch) else sum(hi - lo for lo, hi in p) for _, p in pieces])
        pool.submit(call, pieces)
        call.done.wait()
        with self._stats_lock:
            self.stats["cpu_queries"] += 1
            self.stats["cpu_requests"] += len(pieces)
        if call.error is not None:
            raise BackendError(call.error)
        parts = call.parts
        if len(parts) == 1:
            return parts[0]  # type: ignore[return-value]
        return np.concatenate(parts)  # type: ignore[arg-type]

    def info(self) -> BackendInfo:
        pool = self._pool
        extra: dict[str, Any] = {
            "scheduler": self.sched.to_dict(),
            "cpu_worker": pool.worker_info if pool is not None else {},
            "accelerator": self._accel.info().to_dict() if self._accel is not None else None,
            "routing": dict(self.stats),
            "dead_workers": pool.dead() if pool is not None else [],
        }
        device = "cpu" if self._accel is None else f"cpu+{self._accel.info().device}"
        return BackendInfo(
            name=self.name,
            version=__version__,
            device=device,
            precision=self.config.precision,
            threads=self.sched.cpu_workers,
            extra=extra,
        )

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        for _ in self._accel_threads:
            self._accel_queue.put(None)
        for t in self._accel_threads:
            t.join()
        self._accel_threads = []
        if self._accel is not None:
            self._accel.close()
            self._accel = None
