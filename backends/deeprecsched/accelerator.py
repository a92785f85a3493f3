"""DeepRecSched's accelerator side: offloaded queries, merged into batches, on the backend's own threads.

Offloaded queries run on threads that live as long as the accelerator backend does: an accelerator
keeps per-thread state (torch-cuda: streams, pinned buffers, library handles), and the harness's
threads are new in every LoadGen run (``suite tune`` runs dozens). Each thread takes the queries
waiting for it as one batch until it holds :data:`~.policy.ACCEL_BATCH_ITEMS` items.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import numpy as np

from suite.backends import get_backend
from suite.backends.base import Backend, BackendConfig, BackendInfo
from suite.datasets.batch import Batch
from suite.datasets.queries import MAX_QUERY_ITEMS
from suite.models import ModelSpec
from suite.placement.local import START_TIMEOUT_S

from .policy import ACCEL_BATCH_ITEMS


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


class Accelerator:
    """One loaded accelerator backend and the threads that feed it offloaded queries."""

    def __init__(self, name: str, model: ModelSpec, precision: str) -> None:
        self.backend: Backend = get_backend(name)(BackendConfig(model=model, precision=precision))
        self.backend.load()
        self._items: Batch | None = None
        self._queue: queue.SimpleQueue[tuple[Batch | _Warm, Future[np.ndarray]] | None] = queue.SimpleQueue()
        workers = self.backend.default_workers if self.backend.thread_safe else 1
        self._threads = [threading.Thread(target=self._loop, name=f"recsuite-accel-{i}", daemon=True)
                         for i in range(workers)]
        for t in self._threads:
            t.start()

    def info(self) -> BackendInfo:
        return self.backend.info()

    def attach(self, items: Batch) -> None:
        """Remember the items (batches cut from them merge without a copy) and warm every thread."""
        self._items = items
        self._warm(items)

    def _warm(self, items: Batch) -> None:
        """Run a largest batch once on every accelerator thread, so no timed query pays for a
        thread's first call (buffers sized, handles made)."""
        n = len(self._threads)
        largest = Batch.of_spans(items, [(0, min(len(items), ACCEL_BATCH_ITEMS + MAX_QUERY_ITEMS))])
        barrier = threading.Barrier(n)
        accel = self.backend

        def warm() -> None:
            barrier.wait(START_TIMEOUT_S)  # every thread holds one of the n calls at once: each runs one
            accel.predict(largest)

        futures = []
        for _ in range(n):
            done: Future[np.ndarray] = Future()
            self._queue.put((_Warm(warm), done))
            futures.append(done)
        for f in futures:
            f.result()

    def predict(self, batch: Batch) -> np.ndarray:
        """The scores of one offloaded query (waits for the batch it joins)."""
        done: Future[np.ndarray] = Future()
        self._queue.put((batch, done))
        return done.result()

    def _loop(self) -> None:
        q = self._queue
        while True:
            job = q.get()
            if job is None:
                return
            first = job[0]
            if isinstance(first, _Warm):
                _answer([job], lambda: [first.run()])  # type: ignore[func-returns-value]  # a warm-up job's answer is None, by design
                continue
            jobs: list[tuple[Batch, Future[np.ndarray]]] = [(first, job[1])]
            items = len(first)
            while items < ACCEL_BATCH_ITEMS:
                try:
                    more = q.get_nowait()
                except queue.Empty:
                    break
                if more is None or isinstance(more[0], _Warm):
                    q.put(more)  # for the next get: a stop, or another thread's warm-up
                    break
                jobs.append((more[0], more[1]))
                items += len(more[0])
            _answer(jobs, lambda: self._predict([b for b, _ in jobs]))  # type: ignore[arg-type]  # the jobs hold batches (a warm-up job never reaches here)

    def _predict(self, batches: list[Batch]) -> list[np.ndarray]:
        if len(batches) == 1:
            return [self.backend.predict(batches[0])]
        items = self._items
        if items is not None and all(b.source is items and b.spans for b in batches):
            merged = Batch.of_spans(items, [span for b in batches for span in b.spans])
        else:
            merged = Batch(dense=np.concatenate([b.dense for b in batches]),
                           sparse=tuple(np.concatenate(t) for t in zip(*(b.sparse for b in batches), strict=False)))
        scores = self.backend.predict(merged)
        return np.split(scores, np.cumsum([len(b) for b in batches[:-1]]))

    def close(self) -> None:
        for _ in self._threads:
            self._queue.put(None)
        for t in self._threads:
            t.join()
        self._threads = []
        self.backend.close()
