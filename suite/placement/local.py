"""Workers on this host: threads of the driver, or spawned processes sharing the items in memory.

:class:`ProcessPlacement` spawns one process per :class:`~suite.placement.base.WorkerSpec` (one
per GPU with ``--devices``, N CPU workers with ``--processes``, DeepRecSched's CPU workers), each
building its backend through the lazy registry. The items are copied once into one shared-memory
block (:meth:`ProcessPlacement.attach`); a request then carries only row spans and a reply only
float32 scores, so neither the driver's GIL nor pickling arrays caps throughput. One collector
thread gathers the replies and watches every worker's process sentinel: a worker that dies fails
the futures it held with :class:`~suite.placement.base.WorkerLost` naming it, and every later
submit fails the same way. Workers are spawned, not forked (a fork of a process whose OpenMP
runtime or CUDA context has started can hang), so a script using them needs the usual
``if __name__ == "__main__":`` guard.

Wire format between the driver and a worker: one op byte, then

- ``A`` (driver): pickled (shared-memory name, [(offset, shape, dtype), ...]): attach the items.
- ``J`` (driver): pickled (job id, [request, ...]); a request is a list of (lo, hi) spans, or
  (dense, sparse) arrays. ``R`` (worker): job id, tasks (0: 1-D), then every request's float32
  scores back to back. ``E`` (worker): job id, then the error text. An empty job is a ping.
- ``C`` (driver): pickled (job id, method, args): ``P`` (worker): job id, pickled return value.
- ``Q`` (driver): quit.
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import pickle
import queue
import select
import signal
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from multiprocessing import connection
from multiprocessing.shared_memory import SharedMemory
from typing import Any, ClassVar

import numpy as np

from suite.backends import Backend, get_backend
from suite.datasets.batch import Batch
from suite.errors import BackendError
from suite.placement.base import Placement, Request, WorkerLost, WorkerSpec, concat
from suite.placement.worker import ID, OK, predict_all, worker_main

log = logging.getLogger(__name__)

#: Seconds a worker may take to start (import its framework, build the model, capture graphs).
START_TIMEOUT_S = 600.0
_EMPTY = np.empty(0, dtype=np.float32)


def _as_wire(request: Request) -> Any:
    return (request.dense, request.sparse) if isinstance(request, Batch) else list(request)


class ThreadPlacement(Placement):
    """Workers as threads of the driver, each with its own queue.

    Workers whose specs are equal share one backend when it is thread-safe (one model in memory);
    otherwise each worker builds its own.
    """

    name: ClassVar[str] = "threads"

    def start(self, specs: Sequence[WorkerSpec]) -> None:
        self.specs = tuple(specs)
        self._items: Batch | None = None
        self._backends: list[Backend] = []
        shared: dict[tuple[str, Any], Backend] = {}
        try:
            for spec in self.specs:
                key = (spec.backend, spec.config)
                cls = get_backend(spec.backend)
                backend = shared.get(key) if cls.thread_safe else None
                if backend is None:
                    backend = cls(spec.config)
                    backend.load()
                    shared[key] = backend
                    self.worker_info.append(backend.info().to_dict())
                else:
                    self.worker_info.append(self.worker_info[self._backends.index(backend)])
                self._backends.append(backend)
        except BaseException:
            for b in shared.values():
                b.close()
            raise
        self._owned = list(shared.values())
        self._queues: list[queue.SimpleQueue[tuple[Sequence[Request], Future[np.ndarray]] | None]] = [
            queue.SimpleQueue() for _ in self.specs
        ]
        self._outstanding = [0] * len(self.specs)
        self._count = threading.Lock()
        self._threads = [
            threading.Thread(target=self._work, args=(i,), name=f"recsuite-{s.slug}", daemon=True)
            for i, s in enumerate(self.specs)
        ]
        for t in self._threads:
            t.start()

    def attach(self, items: Batch) -> None:
        self._items = items
        for b in self._owned:
            b.attach_items(items)

    def submit(self, worker: int, requests: Sequence[Request]) -> Future[np.ndarray]:
        done: Future[np.ndarray] = Future()
        with self._count:
            self._outstanding[worker] += len(requests)
        self._queues[worker].put((requests, done))
        return done

    def outstanding(self) -> list[int]:
        return list(self._outstanding)

    def ask(self, worker: int, method: str, *args: Any) -> Any:
        return getattr(self._backends[worker], method)(*args)

    def _work(self, index: int) -> None:
        backend = self._backends[index]
        get = self._queues[index].get
        while True:
            job = get()
            if job is None:
                return
            requests, done = job
            try:
                done.set_result(concat(predict_all(backend, self._items, requests)) if requests else _EMPTY)
            except Exception as exc:
                done.set_exception(BackendError(f"request failed in {self.specs[index].name}: {type(exc).__name__}: {exc}"))
            finally:
                with self._count:
                    self._outstanding[index] -= len(requests)

    def dead(self) -> list[str]:
        return []

    def close(self) -> None:
        threads, self._threads = getattr(self, "_threads", []), []
        for q in self._queues if threads else []:
            q.put(None)
        for t in threads:
            t.join()
        owned, self._owned = getattr(self, "_owned", []), []
        for b in owned:
            b.close()


@dataclass
class _Worker:
    index: int
    spec: WorkerSpec
    process: Any  # multiprocessing.process.BaseProcess
    conn: connection.Connection
    alive: bool = True
    outstanding: int = 0
    death: str = ""
    jobs: dict[int, tuple[Future[Any], int]] = field(default_factory=dict)


class ProcessPlacement(Placement):
    """Spawned worker processes fed row spans of a shared-memory copy of the items."""

    name: ClassVar[str] = "processes"

    @classmethod
    def place(cls, config: Any, backend_cls: type[Backend], cores: int) -> tuple[Backend, int, int]:
        """``--devices`` (a process per GPU) and ``--processes`` (N processes on shares of the cores)."""
        from suite.placement.backend import placed

        return placed(config, backend_cls, cores, cls())

    def start(self, specs: Sequence[WorkerSpec]) -> None:
        self.specs = tuple(specs)
        ctx = mp.get_context("spawn")
        self._lock = threading.Lock()
        self._next_id = 0
        self._shm: SharedMemory | None = None
        self._workers: list[_Worker] = []
        self._open = True
        self._closed = False
        #: The first death, once a worker has died: every later submit fails with it.
        self._broken = ""
        for i, spec in enumerate(self.specs):
            parent, child = ctx.Pipe(duplex=True)
            process = ctx.Process(target=worker_main, args=(spec, child), name=f"recsuite-{spec.slug}", daemon=True)
            process.start()
            child.close()
            self._workers.append(_Worker(index=i, spec=spec, process=process, conn=parent))
        try:
            self.worker_info = [self._wait_ready(w) for w in self._workers]
        except BaseException:
            self._stop_processes(grace_s=0)
            for w in self._workers:
                w.conn.close()
            self._closed = True
            raise
        self._wake_r, self._wake_w = mp.Pipe(duplex=False)
        self._collector = threading.Thread(target=self._collect, name="recsuite-collector", daemon=True)
        self._collector.start()

    def _wait_ready(self, w: _Worker) -> dict[str, Any]:
        ready = connection.wait([w.conn, w.process.sentinel], timeout=START_TIMEOUT_S)
        if w.conn in ready:
            try:
                msg = w.conn.recv_bytes()
            except (EOFError, OSError):
                msg = b""
            if msg[:1] == b"K":
                info: dict[str, Any] = json.loads(msg[1:])
                return info
            if msg[:1] == b"F":
                raise BackendError(f"{w.spec.name} failed to load {w.spec.backend!r}: {msg[1:].decode()}")
        if not ready:
            raise BackendError(f"{w.spec.name} did not start within {START_TIMEOUT_S:.0f} s")
        w.process.join(1)
        raise BackendError(f"{w.spec.name} died while starting ({_exit_text(w.process.exitcode)})")

    def pids(self) -> list[int]:
        """The workers' process ids, in index order."""
        return [w.process.pid for w in self._workers]

    def attach(self, items: Batch) -> None:
        with self._lock:
            if self._shm is not None and getattr(self, "_items", None) is items:
                return  # the same items, already shared
        arrays = [items.dense, *items.sparse]
        layout: list[tuple[int, tuple[int, ...], str]] = []
        size = 0
        for a in arrays:
            size = -(-size // 64) * 64
            layout.append((size, a.shape, a.dtype.str))
            size += a.nbytes
        shm = SharedMemory(create=True, size=max(size, 1))
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

    def submit(self, worker: int, requests: Sequence[Request]) -> Future[np.ndarray]:
        done: Future[np.ndarray] = Future()
        with self._lock:
            if self._broken:
                done.set_exception(WorkerLost(self._broken))
                return done
            w = self._workers[worker]
            job_id = self._next_id
            self._next_id += 1
            w.jobs[job_id] = (done, len(requests))
            w.outstanding += len(requests)
            self._send(w, b"J" + pickle.dumps((job_id, [_as_wire(r) for r in requests]), protocol=5))
        return done

    def outstanding(self) -> list[int]:
        return [w.outstanding for w in self._workers]

    def ask(self, worker: int, method: str, *args: Any) -> Any:
        done: Future[Any] = Future()
        with self._lock:
            w = self._workers[worker]
            if not w.alive:
                raise WorkerLost(w.death)
            job_id = self._next_id
            self._next_id += 1
            w.jobs[job_id] = (done, 0)
            self._send(w, b"C" + pickle.dumps((job_id, method, args)))
        return done.result()

    def _send(self, w: _Worker, message: bytes) -> None:
        try:
            w.conn.send_bytes(message)
        except OSError:
            pass  # the worker is dead; the collector fails what it held when its sentinel fires

    def _collect(self) -> None:
        """Receive the workers' replies and watch their sentinels until woken to stop. One epoll
        set for the placement's life: ``connection.wait`` would build and fill a selector for
        every reply, tens of microseconds of the driver's GIL a batch."""
        poller = select.epoll()
        # fd -> (worker, is its sentinel); None: the wake-up pipe
        watched: dict[int, tuple[_Worker, bool] | None] = {self._wake_r.fileno(): None}
        for w in self._workers:
            watched[w.conn.fileno()] = (w, False)
            watched[w.process.sentinel] = (w, True)
        for fd in watched:
            poller.register(fd, select.EPOLLIN)
        try:
            while True:
                ready: list[tuple[_Worker, bool]] = []
                for fd, _ in poller.poll():
                    entry = watched[fd]
                    if entry is None:
                        return
                    ready.append(entry)
                # Replies first: a worker that answered and then died has its answers read before
                # it is buried, as connection.wait's order (connections before sentinels) gave.
                for w, is_sentinel in sorted(ready, key=lambda entry: entry[1]):
                    if is_sentinel:
                        poller.unregister(w.process.sentinel)
                        self._bury(w)
                        continue
                    try:
                        msg = w.conn.recv_bytes()
                    except (EOFError, OSError):
                        poller.unregister(w.conn.fileno())
                        continue
                    self._reply(w, msg)
        finally:
            poller.close()

    def _reply(self, w: _Worker, msg: bytes) -> None:
        op = msg[:1]
        (job_id,) = ID.unpack_from(msg, 1)
        with self._lock:
            done, n = w.jobs.pop(job_id)
            w.outstanding -= n
        if op == b"R":
            _, tasks = OK.unpack_from(msg, 1)
            scores = np.frombuffer(msg, dtype=np.float32, offset=1 + OK.size)
            done.set_result(scores.reshape(-1, tasks) if tasks else scores)
        elif op == b"P":
            done.set_result(pickle.loads(msg[1 + ID.size:]))
        else:
            done.set_exception(BackendError(f"request failed in {w.spec.name}: {msg[1 + ID.size:].decode()}"))

    def _bury(self, w: _Worker) -> None:
        w.process.join(1)
        with self._lock:
            if not w.alive:
                return
            w.alive = False
            held = list(w.jobs.values())
            w.jobs.clear()
            w.death = (
                f"{w.spec.name} (pid {w.process.pid}) died ({_exit_text(w.process.exitcode)}) "
                f"with {sum(n for _, n in held)} request(s) in flight"
            )
            w.outstanding = 0
            self._broken = self._broken or w.death
        if self._open:
            log.error("%s", w.death)
        for done, _ in held:
            done.set_exception(WorkerLost(w.death))

    def dead(self) -> list[str]:
        return [w.death for w in getattr(self, "_workers", []) if not w.alive]

    def close(self) -> None:
        if getattr(self, "_closed", True):
            return
        self._closed = True
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
            held = [done for w in self._workers for done, _ in w.jobs.values()]
            for w in self._workers:
                w.jobs.clear()
        for done in held:
            done.set_exception(BackendError("the placement was closed"))
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
