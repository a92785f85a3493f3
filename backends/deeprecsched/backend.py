"""DeepRecSched: split queries across single-threaded CPU workers, offload large ones whole.

The scheduler of DeepRecSys (Gupta et al., ISCA 2020; ``shared/reference/deeprecsys.md`` 3), made
real: a query of k items with k >= Q goes whole to the accelerator backend; a smaller one is cut
into ceil(k / B) requests of B items (the last holds the remainder) that run in parallel on the
CPU workers, and the query completes when its last request does.

The harness hands this backend one whole query per ``predict`` call, from several threads (see
``Backend.queries_in_flight``). Each call plans its requests, queues them and waits.

The package: :mod:`.policy` (the setting and the split), :mod:`.tune` (its tuner: the climb over B
and Q), :mod:`.pool` (the CPU workers, placed through ``suite.placement``), :mod:`.accelerator`
(offloaded queries), and this module.

CPU workers (``pool=process``, the default) are spawned processes, each running one instance of the
CPU backend with one intra-op thread, pinned to one core where the OS allows. The dataset's arrays
are copied once into one shared-memory block (``attach_items``); a request then carries only row
ranges, and a reply only the request's scores, so neither the GIL nor pickling arrays caps
throughput. The parent sends each request to the worker with the fewest requests outstanding
(the requests of one query that go to one worker travel as one job, answered once) and one
collector thread gathers the replies. A worker that dies fails the queries it held with a
:class:`~suite.errors.BackendError` naming it, and every query after them: a run that lost a worker
is not the run that was asked for, and failing fast records the death even when the worker held
nothing at the time. The harness completes failed queries, so the run ends and is marked failed.
``pool=thread`` runs the workers as threads of this process instead (compared in the README).

Workers are spawned, not forked (a fork of a process whose OpenMP runtime has started can hang), so
a script that loads this backend needs the usual ``if __name__ == "__main__":`` guard.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from suite import __version__
from suite.backends import REGISTRY, get_backend
from suite.backends.base import Backend, BackendConfig, BackendInfo, Option, Tunable
from suite.datasets.batch import Batch
from suite.datasets.queries import MAX_QUERY_ITEMS
from suite.errors import BackendError, ConfigError
from suite.placement.base import Placement, Request
from suite.placement.local import ProcessPlacement

from .accelerator import Accelerator
from .policy import POOLS, SchedConfig, cut_spans, split
from .pool import start_pool
from .tune import BATCH_SIZES, THRESHOLDS

if TYPE_CHECKING:
    from suite.search import Search, TuneReport


def _inner() -> tuple[str, ...]:
    """The backends the scheduler can run: every registered one but itself (tests add stubs)."""
    return tuple(sorted(set(REGISTRY) - {"deeprecsched"}))


class DeepRecSchedBackend(Backend):
    """The DeepRecSched scheduler over a CPU backend and an optional accelerator backend.

    Options (``--option KEY=VALUE``): ``cpu_backend`` (default torch-cpu), ``accelerator`` (none),
    ``batch_items`` B (0: whole query), ``offload_items`` Q (0: never), ``pool`` (process | thread),
    ``pin`` (1 | 0). ``--threads`` is the number of CPU workers (0: one per available core).
    Any other key is the CPU backend's own (torch-cpu's ``dense``/``rows``, onnxruntime's
    ``quantization``, ...): checked against that backend and handed to every CPU worker, so
    ``--option dense=bf16`` reaches the workers as it would reach a torch-cpu run. The accelerator
    gets only the precision.
    """

    name = "deeprecsched"
    device_kind = "inner"
    tunable = {
        "batch_items": Tunable("batch-sizes", "Per-request batch sizes B, walked in order (phase 1).", BATCH_SIZES,
                               hi=MAX_QUERY_ITEMS),
        "offload_items": Tunable("thresholds", "Offload thresholds Q, walked in order (phase 2, with an accelerator).",
                                 THRESHOLDS, hi=MAX_QUERY_ITEMS),
    }
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

    @classmethod
    def check_options(cls, pairs: Sequence[tuple[str, str]]) -> None:
        """The scheduler's keys against its own options; every other key against the CPU backend's."""
        own = [(k, v) for k, v in pairs if k in cls.options]
        super().check_options(own)
        rest = [(k, v) for k, v in pairs if k not in cls.options]
        if not rest:
            return
        inner_name = dict(own).get("cpu_backend", SchedConfig.cpu_backend)
        inner = get_backend(inner_name)
        for key, _ in rest:
            if key not in inner.options:
                raise ConfigError(f"'option' must be one of {sorted(cls.options)} for backend {cls.name!r} or of "
                                  f"{sorted(inner.options)} for its cpu_backend {inner_name!r} (got {key!r})")
        inner.check_options(rest)

    def __init__(self, config: BackendConfig) -> None:
        super().__init__(config)
        self.check_options(config.options)
        self.sched = SchedConfig.from_backend_config(config)
        self._pool: Placement | None = None
        self._accel: Accelerator | None = None
        self._items: Batch | None = None
        self._stats_lock = threading.Lock()
        self.stats = {"cpu_queries": 0, "cpu_requests": 0, "accelerator_queries": 0}

    def load(self) -> None:
        self._pool = start_pool(self.sched, self.config.model, self.config.precision)
        if self.sched.accelerator != "none":
            self._accel = Accelerator(self.sched.accelerator, self.config.model, self.config.precision)

    def queries_in_flight(self) -> int:
        # Enough queries in flight to keep every worker busy when each query is one request (B=0),
        # and one per accelerator call on top.
        return 2 * self.sched.cpu_workers + (2 if self._accel is not None else 0)

    def attach_items(self, items: Batch) -> None:
        assert self._pool is not None, "load() first"
        self._pool.attach(items)
        self._items = items
        if self._accel is not None:
            self._accel.attach(items)

    def retune(self, *, batch_items: int, offload_items: int) -> None:
        """Change B and Q between runs (``suite tune``); the worker pool stays up."""
        self.sched = dataclasses.replace(self.sched, batch_items=batch_items, offload_items=offload_items)

    @classmethod
    def check_walks(cls, walks: Mapping[str, Sequence[int]]) -> None:
        super().check_walks(walks)
        from .tune import check_walks

        check_walks(walks)

    def tune(self, search: Search, walks: Mapping[str, Sequence[int]]) -> TuneReport:
        """DeepRecSys's climb over B, then Q with an accelerator (:mod:`.tune`)."""
        from .tune import tune

        return tune(self, search, walks)

    def worker_pids(self) -> list[int]:
        """Process ids of the CPU workers (empty for the thread pool)."""
        return self._pool.pids() if isinstance(self._pool, ProcessPlacement) else []

    def predict(self, batch: Batch) -> np.ndarray:
        s = self.sched
        pool = self._pool
        assert pool is not None, "load() first"
        k = len(batch)
        if self._accel is not None and s.offloads(k):
            with self._stats_lock:
                self.stats["accelerator_queries"] += 1
            return self._accel.predict(batch)
        requests: list[Request]
        if batch.source is not None and batch.source is self._items and batch.spans:
            requests = list(cut_spans(batch.spans, s.batch_items))
        else:
            # Not cut from the shared dataset (a direct call): the rows travel with the request.
            requests = [Batch.of_spans(batch, [(lo, hi)]) for lo, hi in split(k, s.batch_items)]
        sizes = [len(r) if isinstance(r, Batch) else sum(hi - lo for lo, hi in r) for r in requests]
        # Each request to the worker holding the fewest; one worker's share of the query is one job.
        loads = pool.outstanding()
        shares: dict[int, list[int]] = {}
        for i in range(len(requests)):
            w = loads.index(min(loads))
            loads[w] += 1
            shares.setdefault(w, []).append(i)
        jobs = [(slots, pool.submit(w, [requests[i] for i in slots])) for w, slots in shares.items()]
        with self._stats_lock:
            self.stats["cpu_queries"] += 1
            self.stats["cpu_requests"] += len(requests)
        parts: list[np.ndarray | None] = [None] * len(requests)
        error = ""
        for slots, done in jobs:
            try:
                scores = done.result()
            except Exception as exc:
                error = error or str(exc)
                continue
            ends = np.cumsum([0, *(sizes[i] for i in slots)])
            for i, lo, hi in zip(slots, ends[:-1], ends[1:], strict=False):
                parts[i] = scores[lo:hi]
        if error:
            raise BackendError(error)
        if len(parts) == 1:
            return parts[0]  # type: ignore[return-value]  # no job failed, so every slot holds its scores
        return np.concatenate(parts)  # type: ignore[arg-type]  # the same: no slot is None

    def info(self) -> BackendInfo:
        pool = self._pool
        extra: dict[str, Any] = {
            "scheduler": self.sched.to_dict(),
            "cpu_worker": pool.worker_info[-1] if pool is not None and pool.worker_info else {},
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
        if self._accel is not None:
            self._accel.close()
            self._accel = None
