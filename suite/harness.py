"""The LoadGen harness: the only module that imports ``mlperf_loadgen``.

LoadGen issues queries (each a sample = one user query of k items) through a fast SUT; the
:class:`Batcher` queues them and its worker threads cut them into batches of at most
``max_batch_items`` items, waiting at most ``batch_timeout_us`` for a batch to fill. One loop serves
every scenario: Offline's single huge query is cut into large batches, Server's Poisson arrivals
are batched dynamically, SingleStream and MultiStream are answered as they come.

A backend whose work runs elsewhere (``completes_async``: workers placed in other processes) gets
the same loop on one thread: each batch goes to ``predict_async`` and is answered, with one
``QuerySamplesComplete``, on the thread that resolves its future (the placement's collector), with
at most ``workers`` batches in flight; no harness thread waits on a round trip.

A backend that schedules queries itself (``Backend.queries_in_flight() > 0``, DeepRecSched) gets
the same loop with a batch limit of one item, so every batch is exactly one whole query, and as
many workers as it wants queries in flight.

A backend that raises never hangs LoadGen: the samples of the failed batch are completed with empty
responses, the error is recorded and the run is reported invalid.

In accuracy runs and compliance audits each sample's response is float32 ``(prediction, label)``
pairs, one per item (and task), as MLPerf's reference SUT writes them, so MLPerf's
``accuracy-dlrm.py`` reads the accuracy log in its documented mode; performance runs answer the
bare predictions (LoadGen logs no response data there).

SIGINT and SIGTERM (``suite.interrupts``) never tear LoadGen down under itself: the batcher stops
calling the backend and answers every queued and later-issued sample at once with an empty
response. LoadGen then often ends by itself (Offline always: its logs are complete); if it has not
within ``INTERRUPT_GRACE_S`` (or a second signal comes), :func:`run` leaves it running, undestroyed,
and raises :class:`~suite.errors.RunInterrupted` saying so: the process must then exit with
``os._exit``.

Size: this module is over 450 lines because the LoadGen callbacks, the batcher, the workers and the signal-safe run block share hot-path state that splitting would put behind calls.
"""

from __future__ import annotations

import bisect
import contextlib
import gc
import logging
import math
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TextIO

import mlperf_loadgen as lg
import numpy as np

from suite import scenarios
from suite.backends.base import Backend
from suite.config import Mode, Scenario, Settings
from suite.datasets.library import QueryLibrary, Staging
from suite.errors import HarnessError, RunInterrupted
from suite.interrupts import StopSignals, signal_name, stop_signals
from suite.scenarios import expected_duration_s, expected_queries

log = logging.getLogger(__name__)

MAX_RECORDED_ERRORS = 10
#: A Server issue gap is recorded as a stall (``Outcome.issue_stalls``) when it is at least this
#: long and at least :data:`STALL_ARRIVALS` mean arrival gaps: Poisson arrivals leave a gap that
#: long once in e**20 (5e8) queries, so a stall is the issuing side stopping, not chance.
STALL_S = 0.02
STALL_ARRIVALS = 20.0
MAX_RECORDED_STALLS = 32
GIL_SWITCH_INTERVAL_S = 0.0002
#: After a stop signal, how long LoadGen may take to end by itself before the harness gives up on it.
INTERRUPT_GRACE_S = 1.0
#: How often the watchdog looks whether LoadGen has ended or a second signal came.
POLL_S = 0.05
#: A many-sample (Offline) query is queued in blocks of its samples: the first this many, each
#: next one BLOCK_GROWTH times the last (Batcher._feed).
FIRST_BLOCK = 16_384
BLOCK_GROWTH = 4
#: LoadGen's lists of a block's samples are read into arrays this many at a time (:func:`as_array`):
#: ``np.fromiter`` holds the GIL for its whole list, 184 ms for 5.5 M samples on a 2-core EPYC, and
#: the device's lanes cannot launch meanwhile (a 162-ms idle gap early in a 60-s DLRM-v2 Offline
#: on an H200).
ARRAY_PIECE = 65_536
#: Upper edges of the issue-to-answer latency bins (:attr:`Outcome.sut_latency`): 10 us to 100 s,
#: 40 a decade (6% apart).
SUT_LATENCY_EDGES_S = np.logspace(-5, 2, 281)
_EDGES = SUT_LATENCY_EDGES_S.tolist()
#: How often a batch that waits for the device to take it (``batches_in_flight``) looks again.
SLOT_POLL_S = 0.0002
#: How long a filling batch sleeps when the queue is empty before it looks again. Blocking on the
#: queue instead woke the forming thread once per query: at Server loads of tens of thousands of
#: queries a second, each wake (a futex, then the GIL) cost more than the query's own batching.
FILL_NAP_S = 0.0001


#: A collection of Python's cyclic garbage collector during a run is recorded in
#: :attr:`GcWatch.pauses` when it takes at least this long (the first :data:`MAX_RECORDED_STALLS`).
GC_PAUSE_S = 0.005


@dataclass
class GcWatch:
    """The collections of Python's cyclic garbage collector in this process while it is installed
    (``gc.callbacks``): counts and time by generation, objects found unreachable, and the long ones
    as ``(seconds since start, seconds)``. A collection holds the GIL throughout, so one of tens of
    milliseconds is a stall of LoadGen's issue thread and of every completion; ``collected`` zero
    over a run says the run made no reference cycles."""

    start: float = 0.0
    collections: list[int] = field(default_factory=lambda: [0, 0, 0])
    seconds: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    collected: int = 0
    pauses: list[tuple[float, float, int]] = field(default_factory=list)
    _began: float = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        now = time.perf_counter()
        if phase == "start":
            self._began = now
            return
        generation, took = info["generation"], now - self._began
        self.collections[generation] += 1
        self.seconds[generation] += took
        self.collected += info["collected"]
        if took >= GC_PAUSE_S and len(self.pauses) < MAX_RECORDED_STALLS:
            self.pauses.append((self._began - self.start, took, generation))

    def summary(self) -> dict[str, Any]:
        """As a result records it: per generation (0, 1, 2) the collections and their milliseconds,
        objects collected, and ``[seconds since start, ms, generation]`` of the long ones."""
        return {"collections": list(self.collections), "ms": [round(1e3 * s, 3) for s in self.seconds],
                "collected": self.collected,
                "pauses": [[round(at, 3), round(1e3 * took, 2), gen] for at, took, gen in self.pauses]}


#: True inside :func:`frozen_heap`, whose end unfreezes what :meth:`Batcher._feed` freezes.
_heap_frozen = False


@contextlib.contextmanager
def frozen_heap(watch: GcWatch | None = None) -> Iterator[None]:
    """Collect, then freeze, every object made before LoadGen starts, until the run ends; with
    ``watch``, record the run's collections in it meanwhile.

    A full collection walks every tracked object: with torch loaded that is some 300,000 (the model,
    the dataset, the imported modules), 170 ms on a 2-core CPU, and one that comes during a Server
    run stalls LoadGen's issue thread and every completion that long. Frozen objects are left out
    of collections; what the run makes is still collected.
    """
    global _heap_frozen
    gc.collect()
    gc.freeze()
    _heap_frozen = True
    if watch is not None:
        watch.start = time.perf_counter()
        gc.callbacks.append(watch)
    try:
        yield
    finally:
        if watch is not None:
            gc.callbacks.remove(watch)
        _heap_frozen = False
        gc.unfreeze()


def loadgen_version() -> str:
    from importlib.metadata import version

    return version("mlcommons-loadgen")


@dataclass
class Outcome:
    """What the harness saw during a run, beside LoadGen's own logs."""

    completed_queries: int = 0
    completed_items: int = 0
    #: Queries answered with empty responses after a stop signal, without calling the backend.
    discarded_queries: int = 0
    batches: int = 0
    error_count: int = 0
    #: Seconds spent gathering batches and inside ``backend.predict``, summed over workers.
    gather_s: float = 0.0
    predict_s: float = 0.0
    errors: list[str] = field(default_factory=list)
    #: How the batcher ran: its threads and batch limit (one item: one query per batch).
    workers: int = 1
    max_batch_items: int = 0
    started: float = 0.0
    finished: float = 0.0
    #: ``time.perf_counter()`` when a stop signal reached the batcher (0: never).
    interrupted_at: float = 0.0
    #: Where a Server (or stream) run's latency accrues (Offline's one query makes them moot).
    #: ``sut_latency`` counts queries by the time from LoadGen's issue call to the harness's answer
    #: (bins :data:`SUT_LATENCY_EDGES_S`): LoadGen's latency also holds the time before its issue
    #: call, so a LoadGen p99 far above this one is time spent before the call (LoadGen's issue
    #: thread waiting, e.g. for the GIL). ``issue_gap_max_s``: the longest time between two issue calls.
    sut_latency: np.ndarray = field(default_factory=lambda: np.zeros(len(SUT_LATENCY_EDGES_S) + 1, dtype=np.int64))
    issue_gap_max_s: float = 0.0
    #: LoadGen's issue calls: fewer than the queries where it coalesced queries already due into
    #: one call (Server's ``server_coalesce_queries``, when its issue thread ran late).
    issue_calls: int = 0
    #: Server: (seconds into the run, gap in seconds) of the issue gaps of at least
    #: :func:`stall_threshold_s`, the first :data:`MAX_RECORDED_STALLS`: when LoadGen's issue
    #: thread stopped, to line up with what else happened then.
    issue_stalls: list[tuple[float, float]] = field(default_factory=list)
    #: The driver's garbage collections during the run (:func:`frozen_heap`).
    gc: GcWatch = field(default_factory=GcWatch)

    @property
    def duration_s(self) -> float:
        return self.finished - self.started

    def issue_stalls_ms(self) -> list[list[float]]:
        """:attr:`issue_stalls` as recorded: ``[seconds into the run, gap in ms]`` each."""
        return [[round(at, 3), round(1e3 * gap, 2)] for at, gap in self.issue_stalls]

    def sut_latency_s(self, quantile: float) -> float:
        """The ``quantile`` of the queries' issue-to-answer time, as the upper edge of its bin (0.0
        before any query was answered)."""
        total = int(self.sut_latency.sum())
        if total == 0:
            return 0.0
        at = int(np.searchsorted(np.cumsum(self.sut_latency), quantile * total))
        return float(SUT_LATENCY_EDGES_S[min(at, len(SUT_LATENCY_EDGES_S) - 1)])

    def record_error(self, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_RECORDED_ERRORS:
            self.errors.append(message)


class Observer(Protocol):
    """Hooks around LoadGen's timed window (e.g. ``suite.power.PowerMeter``).

    ``on_first_issue`` runs on LoadGen's issue thread when the first query arrives and must return
    quickly; ``on_end`` runs on the LoadGen driver thread when ``StartTest`` returns.
    """

    def on_first_issue(self) -> None: ...

    def on_end(self) -> None: ...


class Batcher:
    """Queues LoadGen's samples and answers them in batches from ``workers`` threads.

    Args:
        library: the queries and their items.
        backend: a loaded backend.
        max_batch_items: a batch stops growing once it holds this many items (a single query larger
            than this is still answered whole).
        batch_timeout_us: how long a worker waits for a batch to fill once it holds one query; 0
            takes whatever is queued and never waits.
        workers: threads calling ``backend.predict`` concurrently (1 unless the backend is
            thread-safe).
        on_first_issue: called once, when LoadGen issues its first query.
        labels: the items' labels as float32 (items, tasks); given, every response is
            (prediction, label) pairs instead of bare predictions.
        batches_in_flight: at most this many batches inside ``backend.predict`` at once (0: one
            per worker). A batch whose wait is over then closes only when one of them is answered,
            and keeps taking queued queries until then (see :meth:`_work`).
        requests: for a library of one-item queries that are jagged requests (dlrm-v3), each
            query's (ts_idx, query_idx) and candidate count: responses then take MLPerf v6.0's
            DLRM-v3 layout (:func:`keyed_responses`), the request's real candidates only.
        stall_s: an issue gap at least this long is recorded as a stall (Server:
            :func:`stall_threshold_s`; other scenarios issue on completions or a fixed clock).
        asynchronous: hand batches to ``backend.predict_async`` (a backend whose
            ``completes_async`` is set: placed workers) and answer each one from the thread that
            resolves its future. One thread (the caller of :meth:`serve`) then forms every batch,
            with at most ``workers`` batches in flight, as ``workers`` waiting threads would hold:
            no thread per batch in flight, and no hand-off back to one, per batch.
    """

    def __init__(
        self,
        library: QueryLibrary,
        backend: Backend,
        *,
        max_batch_items: int,
        batch_timeout_us: int = 0,
        workers: int = 1,
        on_first_issue: Callable[[], None] | None = None,
        labels: np.ndarray | None = None,
        batches_in_flight: int = 0,
        requests: Requests | None = None,
        asynchronous: bool = False,
        stall_s: float = math.inf,
    ) -> None:
        self.library = library
        self._stall_s = stall_s
        self._labels = labels
        self._requests = requests
        self._on_first_issue = on_first_issue
        self.backend = backend
        self.max_items = max_batch_items
        self.timeout_s = batch_timeout_us / 1e6
        self.outcome = Outcome(workers=workers, max_batch_items=max_batch_items)
        self._sizes = library.size_list
        # Chunks of at most max_batch_items items (or one query), as LoadGen issued them. A C-level
        # SimpleQueue keeps LoadGen's issue callback to one put: no Python lock, no notify.
        # Each chunk carries when LoadGen issued it (time.perf_counter()).
        self._queue: queue.SimpleQueue[tuple[list[int], list[int], int, float] | None] = queue.SimpleQueue()
        self._last_issue = 0.0
        self._workers = workers
        self._async = asynchronous
        #: Batches in flight that may still be started (asynchronous: one per ``workers``).
        self._permits = threading.Semaphore(workers)
        #: Held by the one worker forming a batch; ``_next`` is the chunk that overflowed the last
        #: batch, the first of the next (read and written only under the lock).
        self._forming = threading.Lock()
        self._slots = threading.Semaphore(batches_in_flight) if 0 < batches_in_flight < workers else None
        self._next: tuple[list[int], list[int], int, float] | None = None
        #: Guards the outcome's counts, which every worker (and, asynchronously, every thread that
        #: resolves a future) adds to: ``x += len(ids)`` is not atomic, and a thread switch inside
        #: it lost a batch of answered queries from the count (144 of LoadGen's 147 on CI).
        self._tally = threading.Lock()
        self._stopping = False
        #: True once :meth:`abandon` was called.
        self.abandoned = False
        # Worker 0 is the thread that calls serve(): the one that loaded the backend. An OpenMP
        # runtime (torch's) keeps one thread team per calling thread, and a second team beside the
        # loader's spinning one cost 20% of throughput on 2 cores.
        self._threads = [
            threading.Thread(target=self._work, name=f"recsuite-worker-{i}", daemon=True)
            for i in range(1, 1 if asynchronous else workers)
        ]

    def start(self) -> None:
        """Start the extra workers; the caller becomes worker 0 with :meth:`serve`."""
        self.outcome.started = time.perf_counter()
        for t in self._threads:
            t.start()

    def serve(self) -> None:
        """Answer queries in the calling thread until :meth:`stop` (or :meth:`abandon`) is called
        and the queue is empty (asynchronous: and every batch in flight is answered, unless
        abandoned)."""
        self._work()
        if self._async:
            self._drain()

    def _drain(self) -> None:
        """Wait until no batch is in flight (its answer and counts done), or the batcher is abandoned."""
        got = 0
        while got < self._workers:
            if self._permits.acquire(timeout=POLL_S):
                got += 1
            elif self.abandoned:
                break
        for _ in range(got):
            self._permits.release()

    def interrupt(self) -> None:
        """Stop calling the backend: every queued and later-issued sample is answered at once with
        an empty response. Safe inside a signal handler (it only sets flags)."""
        if not self._stopping:
            self.outcome.interrupted_at = time.perf_counter()
            self._stopping = True

    def abandon(self) -> None:
        """After :meth:`interrupt`, once LoadGen is given up on: leave what it issues unanswered (a
        stream scenario then stops issuing instead of spinning against empty answers) and let
        every worker return, :meth:`serve` included, without waiting for LoadGen."""
        self.abandoned = True
        self._release_workers()

    def stop(self) -> None:
        """Let the workers finish what is queued and return; joins the extra workers."""
        self._release_workers()
        for t in self._threads:
            t.join()
        self.outcome.finished = time.perf_counter()

    def _release_workers(self) -> None:
        for _ in range(len(self._threads) + 1):
            self._queue.put(None)

    # LoadGen's callbacks -------------------------------------------------------------------
    def issue(self, ids: list[int], indices: list[int]) -> None:
        now = time.perf_counter()
        if self._on_first_issue is not None:
            hook, self._on_first_issue = self._on_first_issue, None
            hook()
        gap = now - self._last_issue if self._last_issue else 0.0
        if gap > self.outcome.issue_gap_max_s:
            self.outcome.issue_gap_max_s = gap
        if gap >= self._stall_s and len(self.outcome.issue_stalls) < MAX_RECORDED_STALLS:
            self.outcome.issue_stalls.append((self._last_issue - self.outcome.started, gap))
        self._last_issue = now
        self.outcome.issue_calls += 1
        if self._stopping:
            if not self.abandoned:
                self._discard(ids)
            return
        if len(indices) > self.max_items:  # every query holds an item at least (QueryLibrary's offsets rise)
            self._feed(ids, indices, now)  # an Offline query: no sum over millions of samples on the way
            return
        sizes = self._sizes
        items = sizes[indices[0]] if len(indices) == 1 else sum(map(sizes.__getitem__, indices))
        if items <= self.max_items or len(indices) == 1:
            self._queue.put((ids, indices, items, now))  # one batch: the order within it does not matter
            return
        self._feed(ids, indices, now)

    def flush(self) -> None:
        pass

    # The one batching loop ------------------------------------------------------------------
    def _feed(self, ids: list[int], indices: list[int], issued: float) -> None:
        """Queue a many-sample query (issued at ``issued``) in blocks of LoadGen's order, each put
        in sweeps (:func:`sweep_order`) and cut into chunks (:meth:`_chunks`) before the next.

        The first block is small so the device starts within milliseconds; each next one is
        :data:`BLOCK_GROWTH` times the last, so it is sorted (numpy, outside the GIL) long before
        the device has answered the blocks before it, and the large blocks keep the sweeps whole.
        A query of 800,000 samples sorted at once kept the device idle for 0.36-0.48 s on a 2-core CPU;
        MLPerf's 600-s Offline runs issue tens of millions of samples.

        No garbage collection runs meanwhile, and inside :func:`frozen_heap` (a run) each block's
        lists are frozen once queued, to be unfrozen when the run ends: LoadGen's two lists of the query's
        samples and the chunks' lists are containers of millions of references, young when the
        feed starts, and the collections their allocation set off walked them for 0.5 s of the
        first 3 s of a 60-s DLRM-v2 Offline run on an H200 (a 90-ms and a 109-ms pause among 120),
        holding the GIL while the device's lanes waited to launch."""
        collecting, freeze = gc.isenabled(), gc.freeze if _heap_frozen else lambda: None
        gc.disable()
        try:
            freeze()
            start, block, n = 0, FIRST_BLOCK, len(indices)
            while start < n:
                end = n if n - start <= 2 * block else start + block
                block_ids, block_indices = as_array(ids, start, end, np.uint64), as_array(indices, start, end, np.int64)
                for chunk in self._chunks(*sweep_order(block_ids, block_indices), issued):
                    self._queue.put(chunk)
                freeze()
                start, block = end, block * BLOCK_GROWTH
        finally:
            if collecting:
                gc.enable()

    def _chunks(self, ids: np.ndarray, indices: np.ndarray, issued: float) -> list[tuple[list[int], list[int], int, float]]:
        """Cut a many-sample query (issued at ``issued``) into chunks of whole queries of at most
        ``max_items`` items (a query larger than that is a chunk of its own)."""
        ends = np.cumsum(self.library.sizes[indices])
        limit = self.max_items
        chunks = []
        start, before, n = 0, 0, len(indices)
        search = ends.searchsorted
        while start < n:
            end = max(int(search(before + limit, side="right")), start + 1)
            items = int(ends[end - 1]) - before
            chunks.append((ids[start:end].tolist(), indices[start:end].tolist(), items, issued))
            start, before = end, int(ends[end - 1])
        return chunks

    def _work(self) -> None:
        """Form a batch, answer it, repeat. One worker forms a batch at a time (``_forming``): it
        takes a chunk (waiting for one), adds queued chunks while the batch has room, waiting up to
        ``batch_timeout_us`` for more, then hands the forming over and answers. A chunk that would
        overflow the batch is left for the next batch, whoever forms it.

        Forming one batch at a time is what makes a wait useful: workers that all waited at once
        would share the arrivals between them and each answer a fraction of a batch (on a device
        that runs one batch at a time, several small padded batches instead of one).

        With ``batches_in_flight`` below the workers, a batch whose wait is over (or, without a
        wait, that found the queue empty) closes only if fewer batches than that are being
        answered; otherwise it keeps taking queries until one is answered or it is full. Under a
        backlog batches then grow full instead of queueing, padded, in front of the device."""
        get = self._queue.get
        limit = self.max_items
        timeout = self.timeout_s
        staging = Staging()
        forming = self._forming
        slots = self._slots
        asynchronous = self._async
        permits = self._permits
        while True:
            # Asynchronous: wait, as a thread per batch in flight would, for one to be answered.
            while asynchronous and not permits.acquire(timeout=POLL_S):
                if self.abandoned:
                    return
            with forming:
                chunk = self._next if self._next is not None else get()
                self._next = None
                if chunk is None:
                    if asynchronous:
                        permits.release()
                    return
                ids, idx, items = list(chunk[0]), list(chunk[1]), chunk[2]
                stamps = [(chunk[3], len(chunk[0]))]
                deadline = time.perf_counter() + timeout if timeout else 0.0
                stopping = False
                held = False
                while items < limit:
                    try:
                        if timeout:
                            left = deadline - time.perf_counter()
                            if left <= 0:
                                if slots is None or slots.acquire(blocking=False):
                                    held = slots is not None
                                    break
                                left = SLOT_POLL_S  # the device holds all it may: keep filling
                            try:
                                more = get(block=False)
                            except queue.Empty:
                                time.sleep(min(left, FILL_NAP_S))
                                continue  # the loop looks at the wait and the slots again
                        else:
                            more = get(block=False)
                    except queue.Empty:
                        if slots is None or slots.acquire(blocking=False):
                            held = slots is not None
                            break
                        try:
                            more = get(timeout=SLOT_POLL_S)
                        except queue.Empty:
                            continue
                    if more is None:
                        stopping = True
                        break
                    if items + more[2] > limit:
                        self._next = more
                        break
                    ids.extend(more[0])
                    idx.extend(more[1])
                    items += more[2]
                    stamps.append((more[3], len(more[0])))
                if slots is not None and not held:
                    slots.acquire()  # full, or stopping: wait for the device while holding the forming
            if asynchronous:
                self._submit(ids, idx, stamps)  # its answer releases the permit and the slot
            else:
                try:
                    self._answer(ids, idx, staging)
                finally:
                    if slots is not None:
                        slots.release()
                self._count_latency(stamps)
            if stopping:  # _next is empty: it was this batch's first chunk or no chunk overflowed
                return

    def _count_latency(self, stamps: list[tuple[float, int]]) -> None:
        """Add a batch's queries to :attr:`Outcome.sut_latency`: ``stamps`` holds (issued at,
        queries) per chunk. Runs under no lock: a lost update between two workers costs one batch's
        counts of a diagnostic, never a query."""
        answered = time.perf_counter()
        hist = self.outcome.sut_latency
        if len(stamps) <= 64:  # a bisect a chunk is cheaper than building arrays for a few
            for issued, count in stamps:
                hist[bisect.bisect_left(_EDGES, answered - issued)] += count
            return
        arr = np.asarray(stamps)
        np.add.at(self.outcome.sut_latency, np.searchsorted(SUT_LATENCY_EDGES_S, answered - arr[:, 0]), arr[:, 1].astype(np.int64))

    def _discard(self, ids: list[int]) -> None:
        lg.QuerySamplesComplete([lg.QuerySampleResponse(i, 0, 0) for i in ids])
        with self._tally:
            self.outcome.discarded_queries += len(ids)

    def _answer(self, ids: list[int], idx: list[int], staging: Staging) -> None:
        if self._stopping:
            self._discard(ids)
            return
        try:
            t0 = time.perf_counter()
            batch = self.library.gather(idx, staging)
            t1 = time.perf_counter()
            scores = self.backend.predict(batch)
            t2 = time.perf_counter()
        except Exception as exc:
            self._failed(ids, exc)
            return
        self._respond(ids, idx, scores, len(batch), t2 - t1, t1 - t0)

    def _submit(self, ids: list[int], idx: list[int], stamps: list[tuple[float, int]]) -> None:
        """Asynchronous: hand the batch to ``predict_async``; :meth:`_resolved` answers it. No
        staging buffers: the batch may be read after this worker has formed the next one."""
        if self._stopping:
            self._discard(ids)
            self._settled(stamps)
            return
        try:
            t0 = time.perf_counter()
            batch = self.library.gather(idx)
            t1 = time.perf_counter()
            future = self.backend.predict_async(batch)
        except Exception as exc:
            self._failed(ids, exc)
            self._settled(stamps)
            return
        n = len(batch)
        future.add_done_callback(lambda done: self._resolved(done, ids, idx, n, stamps, t1, t1 - t0))

    def _resolved(self, done: Future[np.ndarray], ids: list[int], idx: list[int], n: int,
                  stamps: list[tuple[float, int]], submitted: float, gather_s: float) -> None:
        """Answer a batch whose future resolved (on the thread that resolved it). Never raises: a
        future's callback that raised would be logged and dropped, its samples never answered."""
        try:
            waited = time.perf_counter() - submitted
            try:
                scores = done.result()
            except Exception as exc:
                self._failed(ids, exc, waited, gather_s)
            else:
                self._respond(ids, idx, scores, n, waited, gather_s)
        except Exception as exc:  # pragma: no cover - _failed and _respond answer every sample themselves
            log.exception("answering a batch failed: %s", exc)
        finally:
            self._settled(stamps)

    def _settled(self, stamps: list[tuple[float, int]]) -> None:
        """An asynchronous batch is answered: count its latency, free its slot and its permit."""
        try:
            self._count_latency(stamps)
        finally:
            if self._slots is not None:
                self._slots.release()
            self._permits.release()

    def _failed(self, ids: list[int], exc: Exception, predict_s: float = 0.0, gather_s: float = 0.0) -> None:
        """Answer a batch whose backend call raised with empty responses and record the error
        (after a stop signal: discard it, e.g. a scheduler closed under a call that was waiting);
        ``predict_s`` and ``gather_s``: the batch's time in the backend and in gathering, if known."""
        if self._stopping:
            self._discard(ids)
            return
        message = f"{type(exc).__name__}: {exc}"
        out = self.outcome
        with self._tally:
            out.record_error(message)  # before LoadGen hears of it: the run's end may follow
            out.predict_s += predict_s
            out.gather_s += gather_s
        lg.QuerySamplesComplete([lg.QuerySampleResponse(i, 0, 0) for i in ids])
        with self._tally:
            out.completed_queries += len(ids)

    def _respond(self, ids: list[int], idx: list[int], scores: Any, n: int, predict_s: float, gather_s: float) -> None:
        """Answer a batch of ``n`` items with ``scores``: one ``QuerySamplesComplete`` for all of it;
        counted with the seconds it spent in the backend (``predict_s``) and being gathered."""
        out = self.outcome
        try:
            if not isinstance(scores, np.ndarray) or scores.dtype != np.float32 or scores.shape[:1] != (n,):
                got = getattr(scores, "shape", type(scores).__name__)
                dtype = getattr(scores, "dtype", "")
                raise TypeError(f"backend returned {got} {dtype} for {n} items (want float32 of length {n})")
            scores = np.ascontiguousarray(scores)
            if self._requests is not None:
                flat, spans = keyed_responses(scores, idx, self._requests, self._labels)
            elif self._labels is not None:
                scores = self._pairs(scores, idx, self._labels)
        except Exception as exc:
            self._failed(ids, exc, predict_s, gather_s)
            return
        response = lg.QuerySampleResponse
        responses: list[Any] = []
        append = responses.append
        offset = 0
        if self._requests is not None:  # one request per query, laid out in ``flat``
            base = flat.__array_interface__["data"][0]
            for sample_id, (lo, length) in zip(ids, spans, strict=False):
                append(response(sample_id, base + 4 * lo, 4 * length))
            offset = len(ids)
        else:
            row_bytes = scores.strides[0]
            base = scores.__array_interface__["data"][0]
            sizes = self._sizes
            for sample_id, i in zip(ids, idx, strict=False):
                size = sizes[i]
                append(response(sample_id, base + offset * row_bytes, size * row_bytes))
                offset += size
        lg.QuerySamplesComplete(responses)
        with self._tally:
            out.completed_queries += len(ids)
            out.completed_items += offset
            out.batches += 1
            out.predict_s += predict_s
            out.gather_s += gather_s

    def _pairs(self, scores: np.ndarray, idx: list[int], labels: np.ndarray) -> np.ndarray:
        """(items, tasks, 2) float32: each score beside its item's label, in the batch's order."""
        n = len(scores)
        if len(idx) == 1:
            lo = self.library.offset_list[idx[0]]
            rows: slice | np.ndarray = slice(lo, lo + n)
        else:
            # The batch is the queries' item ranges one after another: item j of the batch is row
            # j + (start of its query - items before its query in the batch).
            sizes = self.library.sizes[idx]
            shift = self.library.offsets[idx] - (np.cumsum(sizes) - sizes)
            rows = np.arange(n) + np.repeat(shift, sizes)
        pairs = np.empty((n, labels.shape[1], 2), dtype=np.float32)
        pairs[:, :, 0] = scores.reshape(n, -1)
        pairs[:, :, 1] = labels[rows]
        return pairs


@dataclass(frozen=True)
class Requests:
    """A library of jagged requests (dlrm-v3): each query's (ts_idx, query_idx) as float32 (N, 2) and
    its candidate count, as MLPerf's responses carry them."""

    keys: np.ndarray
    candidates: list[int]
    rows: list[int]

    @classmethod
    def of(cls, library: QueryLibrary) -> Requests | None:
        """The library's requests when its dataset stores request keys (``keys``: dlrm-v3), else None.
        A request's candidates are its labels >= 0 (-1 marks a padding slot)."""
        keys = library.dataset.extra.get("keys")
        labels = np.asarray(library.dataset.labels)
        if keys is None or labels.ndim != 2 or any(size != 1 for size in library.size_list):
            return None
        rows = library.offsets[:-1]
        counts = (labels >= 0).sum(axis=1)[rows]
        return cls(keys=np.asarray(keys)[rows].astype(np.float32), candidates=counts.tolist(), rows=rows.tolist())


def keyed_responses(scores: np.ndarray, idx: list[int], requests: Requests, labels: np.ndarray | None
                    ) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Responses in MLPerf v6.0's DLRM-v3 layout (``recommendation/dlrm_v3/main.py``, which
    compliance/TEST08/run_verification.py and accuracy.py parse): ``[ts_idx, query_idx,
    predictions...]`` in performance mode; with ``labels``, ``[ts_idx, query_idx, predictions...,
    labels..., weights (1.0)..., candidate count]``. One float32 buffer for the batch and each
    query's (start, length) in floats in it; only a request's real candidates are answered.
    """
    parts: list[np.ndarray] = []
    spans: list[tuple[int, int]] = []
    start = 0
    for j, i in enumerate(idx):
        n = requests.candidates[i]
        parts.append(requests.keys[i])
        parts.append(scores[j, :n] if scores.ndim > 1 else scores[j : j + 1])
        length = 2 + n
        if labels is not None:
            parts += [labels[requests.rows[i], :n], np.ones(n, np.float32), np.array([n], np.float32)]
            length += 2 * n + 1
        spans.append((start, length))
        start += length
    return np.concatenate(parts).astype(np.float32, copy=False), spans


def rehearse_responses(scores: np.ndarray, sizes: list[int]) -> None:
    """Build, and drop, the responses the harness would send LoadGen for a batch of queries of
    ``sizes`` items: the warm-up's probe pays the per-query cost of answering as the run does."""
    row_bytes = scores.strides[0] if scores.ndim else 4
    base = scores.__array_interface__["data"][0]
    response = lg.QuerySampleResponse
    offset = 0
    responses = []
    for i, size in enumerate(sizes):
        responses.append(response(i, base + offset * row_bytes, size * row_bytes))
        offset += size


def as_array(values: list[int], start: int, end: int, dtype: type[np.generic]) -> np.ndarray:
    """``values[start:end]`` as a numpy array, read :data:`ARRAY_PIECE` at a time so that no
    single call holds the GIL for long: a thread that must launch work on a device waits for one
    piece at most, not for the whole list."""
    out = np.empty(end - start, dtype=dtype)
    for at in range(start, end, ARRAY_PIECE):
        upto = min(at + ARRAY_PIECE, end)
        out[at - start:upto - start] = np.fromiter(values[at:upto], dtype=dtype, count=upto - at)
    return out


def sweep_order(ids: np.ndarray, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reorder a many-sample query into sweeps over its distinct indices in ascending order.

    LoadGen's Offline query lists samples in random order with repeats; answered in that order,
    every batch would gather scattered queries' rows. In sweeps (each index once, ascending, then
    again), consecutive samples are mostly consecutive queries, whose items are one contiguous
    slice that reaches the backend without a copy. The SUT may answer an Offline query's samples in
    any order; every sample is still answered, and no answer is reused. Takes and returns (ids,
    indices) as arrays (uint64, int64); which of an index's repeats lands in which sweep is arbitrary.
    """
    counts = np.bincount(indices)
    by_index = np.argsort(indices)  # groups each index's repeats, in no particular order
    occurrence = np.empty_like(indices)
    occurrence[by_index] = np.arange(len(indices)) - (np.cumsum(counts) - counts)[indices[by_index]]
    order = np.argsort(occurrence * len(counts) + indices)  # sweep, then index: every key distinct
    return ids[order], indices[order]


class Progress:
    """A live progress line on stderr: completed queries of the expected total, elapsed time, and
    an ETA from the rate measured so far (from the settings' estimate until a rate is known)."""

    def __init__(
        self,
        outcome: Outcome,
        expected_s: float,
        total_queries: int | None,
        stream: TextIO = sys.stderr,
        *,
        enabled: bool = True,
    ) -> None:
        self.enabled = enabled
        self.outcome = outcome
        self.expected_s = expected_s
        self.total = total_queries
        self.stream = stream
        self._stop = threading.Event()
        self._tty = stream.isatty()
        self._thread = threading.Thread(target=self._run, name="recsuite-progress", daemon=True)
        self._started = time.perf_counter()

    def __enter__(self) -> Progress:
        self._started = time.perf_counter()
        if self.enabled:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.enabled:
            return
        self._stop.set()
        self._thread.join()
        if self._tty:
            self.stream.write("\n")
            self.stream.flush()

    def line(self, elapsed: float | None = None) -> str:
        """The progress line ``elapsed`` seconds into the run (now, if None)."""
        if elapsed is None:
            elapsed = time.perf_counter() - self._started
        done = self.outcome.completed_queries
        of = f"/{self.total:,}" if self.total else ""
        return (
            f"  {done:,}{of} queries, {self.outcome.completed_items:,} items, {elapsed:.0f} s elapsed, "
            f"{eta_text(done, self.total, elapsed, self.expected_s)}"
        )

    def _run(self) -> None:
        interval = 0.5 if self._tty else 10.0
        while not self._stop.wait(interval):
            if self._tty:
                self.stream.write("\r" + self.line().ljust(100))
            else:
                self.stream.write(self.line() + "\n")
            self.stream.flush()


def eta_text(done: int, total: int | None, elapsed: float, expected_s: float) -> str:
    """How long the run has left, as the progress line says it.

    With a total and some queries done, the rest at the rate so far (a run slower than its
    settings assumed shows it); before that, the settings' estimate; past the estimate with no
    total, LoadGen is still waiting for its minimums and no honest figure exists.
    """
    if total and done and elapsed >= 1.0:
        if done >= total:
            return "finishing"
        left = (total - done) * elapsed / done
        return f"about {_seconds(left)} left"
    left = expected_s - elapsed
    if left > 0:
        return f"about {_seconds(left)} left (estimated from the settings)"
    return "past the settings' estimate, waiting for LoadGen"


def _seconds(s: float) -> str:
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.0f} min"


def test_settings(settings: Settings, total_queries: int, user_conf: Path | None) -> lg.TestSettings:
    """LoadGen's TestSettings: the built-in mlperf.conf (seeds), then the rule table, then user.conf.

    ``FromConfig`` is called with conf_type 0 and then 2, never twice with 1, which LoadGen logs as
    an error ("Multiple conf files are used").
    """
    scen = settings.scenario.value
    ts = lg.TestSettings()
    if ts.FromConfig("", settings.loadgen_model, scen, 0) != 0:
        raise HarnessError(f"LoadGen refused its built-in config for {settings.loadgen_model} {scen}")
    row = scenarios.spec(settings.scenario)
    ts.scenario = getattr(lg.TestScenario, row.loadgen)
    ts.mode = lg.TestMode.AccuracyOnly if settings.mode is Mode.ACCURACY else lg.TestMode.PerformanceOnly
    ts.min_duration_ms = settings.min_duration_ms
    ts.min_query_count = settings.min_query_count
    psc = settings.performance_sample_count or total_queries
    ts.performance_sample_count_override = min(psc, total_queries)
    row.apply(ts, settings)
    if settings.seeds is not None:
        ts.qsl_rng_seed, ts.sample_index_rng_seed, ts.schedule_rng_seed = settings.seeds
    if settings.audit == "TEST05":
        # LoadGen reads ``test05`` only from its built-in mlperf.conf (conf_type 0), never from an
        # audit.config (conf_type 2), so TEST05's audit.config line alone changes nothing. Setting
        # the flag makes LoadGen swap in the built-in test05_* seeds, as TEST05 intends.
        ts.test05 = True
    if user_conf is not None and ts.FromConfig(str(user_conf), settings.loadgen_model, scen, 2) != 0:
        raise HarnessError(f"LoadGen could not read user.conf {str(user_conf)!r}")
    return ts


def stall_threshold_s(settings: Settings) -> float:
    """The issue gap that counts as a stall: Server only, at least :data:`STALL_S` and
    :data:`STALL_ARRIVALS` mean arrival gaps at the target QPS."""
    if settings.scenario is not Scenario.SERVER or settings.target_qps <= 0:
        return math.inf
    return max(STALL_S, STALL_ARRIVALS / settings.target_qps)


def batcher_shape(backend: Backend, max_batch_items: int, workers: int) -> tuple[int, int]:
    """(threads calling ``predict``, batch limit in items) for ``backend``.

    A backend that schedules each query itself gets a limit of one item, which makes every batch
    exactly one whole query (a batch takes its first query whatever its size, then stops), and as
    many threads as it wants queries in flight; a backend that is not thread-safe gets one thread.
    """
    in_flight = backend.queries_in_flight()
    if in_flight:
        return max(workers, in_flight), 1
    return (workers if backend.thread_safe else 1), max_batch_items


def run(
    library: QueryLibrary,
    backend: Backend,
    settings: Settings,
    outdir: Path,
    *,
    user_conf: Path | None = None,
    audit_config: Path | None = None,
    workers: int = 1,
    progress: bool = True,
    observer: Observer | None = None,
) -> Outcome:
    """Run LoadGen against ``backend`` and write its ``mlperf_log_*`` files into ``outdir``.

    Args:
        audit_config: a compliance audit's ``audit.config``; without one LoadGen is pointed at a
            path that does not exist, so a stray ``audit.config`` in the working directory is never
            picked up.
        observer: told when LoadGen issues its first query and when ``StartTest`` returns: the
            timed window (a power meter samples only inside it).

    Raises:
        RunInterrupted: SIGINT or SIGTERM came (the handlers are installed here if no caller did);
            its ``outcome`` is what completed, its ``loadgen_running`` whether LoadGen was left
            running.
    """
    with stop_signals() as stop, stop.held():
        return _run(library, backend, settings, outdir, user_conf=user_conf, audit_config=audit_config,
                    workers=workers, progress=progress, observer=observer, stop=stop)


def _run(
    library: QueryLibrary,
    backend: Backend,
    settings: Settings,
    outdir: Path,
    *,
    user_conf: Path | None,
    audit_config: Path | None,
    workers: int,
    progress: bool,
    observer: Observer | None,
    stop: StopSignals,
) -> Outcome:
    total = len(library)
    ts = test_settings(settings, total, user_conf)
    log_settings = lg.LogSettings()
    log_settings.log_output.outdir = str(outdir)
    log_settings.log_output.copy_summary_to_stdout = False
    log_settings.enable_trace = False
    audit = str(audit_config) if audit_config else str(outdir / "no-audit.config")

    backend.attach_items(library.items)
    backend.begin_run()
    in_flight = backend.queries_in_flight()
    labels = None
    if settings.mode is Mode.ACCURACY or settings.audit is not None:
        raw = np.asarray(library.dataset.labels)
        labels = raw.reshape(len(raw), -1).astype(np.float32)
    threads, max_batch_items = batcher_shape(backend, settings.max_batch_items, workers)
    requests = Requests.of(library)
    if requests is not None and settings.mode is not Mode.ACCURACY:
        labels = None  # MLPerf's performance-mode layout, which TEST08 reads: keys and predictions
    batcher = Batcher(
        library,
        backend,
        max_batch_items=max_batch_items,
        batch_timeout_us=0 if in_flight else settings.batch_timeout_us,
        workers=threads,
        on_first_issue=observer.on_first_issue if observer is not None else None,
        labels=labels,
        batches_in_flight=0 if in_flight else settings.batches_in_flight,
        requests=requests,
        asynchronous=backend.completes_async and not in_flight,
        stall_s=stall_threshold_s(settings),
    )
    if backend.network_name() is None:
        sut = lg.ConstructFastSUT(batcher.issue, batcher.flush)
        destroy_sut = lg.DestroyFastSUT
    else:  # Network division: LoadGen talks to a query dispatch library, named by the SUT nodes
        def issue_samples(samples: list[Any]) -> None:
            batcher.issue([s.id for s in samples], [s.index for s in samples])

        sut = lg.ConstructQDL(issue_samples, batcher.flush, lambda: backend.network_name() or "")
        destroy_sut = lg.DestroyQDL
    qsl = lg.ConstructQSL(total, min(settings.performance_sample_count or total, total), _noop, _noop)
    failure: list[BaseException] = []

    def loadgen() -> None:
        try:
            lg.StartTestWithLogSettings(sut, qsl, ts, log_settings, audit)
        except BaseException as exc:
            failure.append(exc)
        finally:
            try:
                if observer is not None:
                    observer.on_end()
            finally:
                batcher.stop()

    driver = threading.Thread(target=loadgen, name="recsuite-loadgen", daemon=True)
    outcome = batcher.outcome
    # Wakes the watchdog: True from the signal handler, False when serving ended. SimpleQueue.put is
    # reentrant, so safe in a handler (an Event's lock could deadlock against the interrupted code).
    wake: queue.SimpleQueue[bool] = queue.SimpleQueue()

    def on_signal(_signum: int) -> None:
        batcher.interrupt()
        wake.put(True)

    def watchdog() -> None:
        """After a signal: wait for LoadGen to end by itself, at most the grace (less on a second
        signal), then release the workers without it. Not the serving thread's job: it waits in
        SimpleQueue.get, and on CPython 3.11 such a wait that a signal interrupted has outlived its
        timeout (one double Ctrl-C in four sat there 29.6 s, until LoadGen ended)."""
        if not wake.get():
            return  # the run ended without a signal
        deadline = outcome.interrupted_at + INTERRUPT_GRACE_S
        while driver.is_alive() and not stop.repeated and (left := deadline - time.perf_counter()) > 0:
            driver.join(min(left, POLL_S))
        if driver.is_alive():
            batcher.abandon()

    guard = threading.Thread(target=watchdog, name="recsuite-interrupt-watchdog", daemon=True)

    total_shown = expected_queries(settings, total)
    # LoadGen's issue thread needs the GIL for every query; with CPython's default 5 ms switch
    # interval it can wait that long behind a worker building responses, which shows up in p99.
    switch_interval = sys.getswitchinterval()
    loadgen_running = False
    try:
        stop.raise_if_stopped(" before LoadGen started")
        batcher.start()
        guard.start()
        sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
        with stop.on_stop(on_signal), frozen_heap(outcome.gc), Progress(
            outcome, expected_duration_s(settings, total), total_shown, enabled=progress
        ):
            driver.start()
            batcher.serve()
            wake.put(False)
            guard.join()
            if batcher.abandoned:  # the watchdog gave up on LoadGen (unless it ended just then)
                driver.join(POLL_S)
                loadgen_running = driver.is_alive()
            else:  # LoadGen's test returned; its driver joins the workers
                driver.join()
    finally:
        wake.put(False)  # the watchdog returns whatever ended the run
        sys.setswitchinterval(switch_interval)
        if not loadgen_running:  # destroying them under a running test crashes LoadGen
            lg.DestroyQSL(qsl)
            destroy_sut(sut)
    if outcome.interrupted_at:
        assert stop.signum is not None
        if loadgen_running:
            outcome.finished = time.perf_counter()
        after = outcome.interrupted_at - outcome.started
        raise RunInterrupted(
            f"interrupted by {signal_name(stop.signum)} after {after:.1f} s of LoadGen "
            f"({outcome.completed_queries:,} queries answered, {outcome.discarded_queries:,} discarded; "
            + ("LoadGen was left running, its logs cut short)" if loadgen_running else "LoadGen ended, its logs are complete)"),
            signum=stop.signum,
            loadgen_running=loadgen_running,
            outcome=outcome,
        )
    if failure:
        raise HarnessError(f"LoadGen failed: {failure[0]}")
    return outcome


def _noop(_samples: list[int]) -> None:
    pass
