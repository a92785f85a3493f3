"""A local worker process: build one backend from its :class:`~suite.placement.base.WorkerSpec`,
map the driver's shared-memory items, answer requests until told to quit.

The wire format is :mod:`suite.placement.local`'s (its docstring). Spawned, not forked.
"""

from __future__ import annotations

import gc
import json
import os
import pickle
import queue
import signal
import struct
import sys
import threading
from collections.abc import Callable, Sequence
from multiprocessing import connection
from multiprocessing.shared_memory import SharedMemory
from typing import Any

import numpy as np

from suite.backends import Backend, get_backend
from suite.datasets.batch import Batch
from suite.errors import BackendError
from suite.placement.base import WorkerSpec

OK = struct.Struct("<qI")  # job id, tasks (0: scores are 1-D)
ID = struct.Struct("<q")


def predict_all(backend: Backend, items: Batch | None, requests: Sequence[Any]) -> list[np.ndarray]:
    """Every request's float32 scores, each from its own ``predict`` call."""
    parts = []
    for request in requests:
        if isinstance(request, Batch):
            batch = request
        elif isinstance(request, tuple):
            batch = Batch(dense=request[0], sparse=request[1])
        else:
            if items is None:
                raise BackendError("a request of spans before the items were attached")
            batch = Batch.of_spans(items, request)
        parts.append(np.ascontiguousarray(backend.predict(batch), dtype=np.float32))
    return parts


def serve(conn: connection.Connection, backend: Backend, spec: WorkerSpec, items: Callable[[], Batch | None],
          attach: Callable[[bytes], None] | None = None) -> None:
    """Answer the driver's jobs (``J``: spans of ``items()``), calls (``C``) and, with ``attach``,
    attaches (``A``: ``attach(payload)``) on ``conn`` until it says quit (``Q``) or goes away. Jobs
    run in order, or on ``spec.concurrency`` threads when that is above 1."""
    send_lock = threading.Lock()

    def send(message: bytes) -> None:
        with send_lock:
            try:
                conn.send_bytes(message)
            except OSError:
                pass  # the driver is gone; the loop below ends on EOF

    def run(job_id: int, requests: list[Any]) -> None:
        try:
            parts = predict_all(backend, items(), requests)
            tasks = parts[0].shape[1] if parts and parts[0].ndim == 2 else 0
            send(b"".join([b"R", OK.pack(job_id, tasks), *(p.tobytes() for p in parts)]))
        except Exception as exc:
            send(b"E" + ID.pack(job_id) + f"{type(exc).__name__}: {exc}".encode())

    # With concurrency, jobs go to that many threads; the driver attaches items only between runs,
    # when no job is in flight.
    jobs: queue.SimpleQueue[tuple[int, list[Any]] | None] = queue.SimpleQueue()

    def work() -> None:
        while (job := jobs.get()) is not None:
            run(*job)

    threads = [threading.Thread(target=work, name=f"recsuite-{spec.slug}-{i}", daemon=True)
               for i in range(spec.concurrency if spec.concurrency > 1 else 0)]
    for t in threads:
        t.start()
    while True:
        try:
            msg = conn.recv_bytes()
        except (EOFError, OSError):
            break  # the driver is gone
        op = msg[:1]
        if op == b"Q":
            break
        if op == b"A" and attach is not None:
            attach(msg[1:])
            continue
        if op == b"C":
            job_id, method, args = pickle.loads(msg[1:])
            try:
                send(b"P" + ID.pack(job_id) + pickle.dumps(getattr(backend, method)(*args)))
            except Exception as exc:
                send(b"E" + ID.pack(job_id) + f"{type(exc).__name__}: {exc}".encode())
            continue
        job_id, requests = pickle.loads(msg[1:])
        if threads:
            jobs.put((job_id, requests))
        else:
            run(job_id, requests)
    for _ in threads:
        jobs.put(None)
    for t in threads:
        t.join()


def worker_main(spec: WorkerSpec, conn: connection.Connection) -> None:
    """A worker process: build ``spec``'s backend, then answer the driver until told to quit."""
    # The driver handles Ctrl-C and SIGTERM (a terminal or a service manager signals the whole
    # process group) and closes the placement; a worker whose driver is gone leaves on EOF.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if spec.cores:
        try:
            os.sched_setaffinity(0, set(spec.cores))
        except OSError:
            pass
    try:
        backend = get_backend(spec.backend)(spec.config)
        backend.load()
        info = backend.info().to_dict()
    except Exception as exc:
        conn.send_bytes(b"F" + f"{type(exc).__name__}: {exc}".encode())
        return
    if spec.cores:
        info["pinned_cores"] = list(spec.cores)
        if len(spec.cores) == 1:
            info["pinned_core"] = spec.cores[0]
    freeze_heap()
    # The worker keeps CPython's 5-ms GIL switch interval: the driver's 0.2 ms
    # (harness.GIL_SWITCH_INTERVAL_S), tried here on the H200, doubled dlrm-v2's host time a batch
    # (2,116 us against 813-1,150) and did not lift NCF's Server capacity (docs/gpu.md).
    conn.send_bytes(b"K" + json.dumps(info, default=str).encode())
    shm: SharedMemory | None = None
    items: Batch | None = None

    def attach(payload: bytes) -> None:
        nonlocal shm, items
        name, layout = pickle.loads(payload)
        items = None
        if shm is not None:
            _close_quietly(shm)
        shm = SharedMemory(name=name)
        arrays = [np.ndarray(shape, np.dtype(dtype), buffer=shm.buf, offset=off) for off, shape, dtype in layout]
        items = Batch(dense=arrays[0], sparse=tuple(arrays[1:]))
        backend.attach_items(items)
        freeze_heap()

    serve(conn, backend, spec, lambda: items, attach)
    backend.close()
    items = None  # drop the last views before closing the mapping
    if shm is not None:
        _close_quietly(shm)
    # Nothing is left to write, and the interpreter's shutdown with torch loaded takes seconds on a
    # busy machine (4 s measured on 2 shared cores): the driver's close, and a stop on Ctrl-C, would wait.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def freeze_heap() -> None:
    """Collect, then leave out of every later collection, what the worker holds now (the backend,
    its framework, the items): a full collection of a process with torch loaded walks some 300,000
    objects, a stall of every lane (the driver does the same for LoadGen's run: ``harness.frozen_heap``)."""
    gc.collect()
    gc.freeze()


def _close_quietly(shm: SharedMemory) -> None:
    try:
        shm.close()
    except BufferError:
        pass  # a view is still alive somewhere; the mapping goes with the process
