"""A backend whose predict calls run on placed workers: ``suite run --devices`` and ``--processes``.

The harness sees one thread-safe backend; each ``predict`` (one batch the batcher formed) goes, as
row spans of the attached items, to the worker holding the fewest requests, and waits for its
scores. The harness's threads therefore keep every worker fed (the runner gives it the workers one
worker asks for, times the number of workers). The record gets the inner backend's ``info`` (of
worker 0), the placement (``placement``) and the worker count.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

import numpy as np

from suite.backends.base import Backend, BackendConfig, BackendInfo, BatchDefaults
from suite.datasets.batch import Batch
from suite.errors import ConfigError
from suite.inputs import IN_PROCESS, parse_devices_text
from suite.placement.base import Placement, PlacementInfo, Request, WorkerLost, WorkerSpec

#: Harness threads per worker when the inner backend declares none: one batch in flight and one
#: being gathered, so a worker never waits on the driver.
THREADS_PER_WORKER = 2


def parse_devices(text: str, available: int) -> tuple[int, ...]:
    """``--devices`` as GPU indices: ``all``, a count ``N`` (the first N) or a list ``0,2``.

    Raises:
        ConfigError: malformed, repeated, or more/other GPUs than the ``available`` ones.
    """
    wanted = parse_devices_text(text)
    if wanted == IN_PROCESS:
        raise ConfigError(f"'devices' {IN_PROCESS} places no worker (the backend runs in this process)")
    if wanted == "all":
        if available < 1:
            raise ConfigError("'devices' all found no CUDA GPU on this host")
        return tuple(range(available))
    if isinstance(wanted, str):
        raise ConfigError(f"'devices' must be all, a count or a list of GPU indices (got {wanted!r})")
    if isinstance(wanted, int):
        if wanted > available:
            raise ConfigError(f"'devices' asks for {wanted} GPU(s) but this host has {available}")
        return tuple(range(wanted))
    missing = [i for i in wanted if i >= available]
    if missing:
        raise ConfigError(f"'devices' names cuda:{missing[0]} but this host has {available} GPU(s) (cuda:0..cuda:{available - 1})"
                          if available else f"'devices' names cuda:{missing[0]} but this host has no CUDA GPU")
    return wanted


def gpu_specs(backend: str, config: BackendConfig, devices: Sequence[int], concurrency: int = 1) -> list[WorkerSpec]:
    """One worker per GPU, each building ``backend`` on its own ``cuda:K`` and running
    ``concurrency`` batches at once (torch-cuda: one per lane)."""
    options = tuple((k, v) for k, v in config.options if k != "device")
    return [
        WorkerSpec(name=f"GPU worker {i} (cuda:{d})", backend=backend, device=f"cuda:{d}", concurrency=concurrency,
                   config=BackendConfig(model=config.model, threads=config.threads, precision=config.precision,
                                        options=(*options, ("device", f"cuda:{d}"))))
        for i, d in enumerate(devices)
    ]


def cpu_specs(backend: str, config: BackendConfig, processes: int) -> list[WorkerSpec]:
    """``processes`` CPU workers, each pinned to its own equal share of this process's cores (a
    NUMA node's, when the share matches one) with ``config.threads`` intra-op threads (0: the share)."""
    cores = sorted(os.sched_getaffinity(0))
    share = max(1, len(cores) // processes)
    specs = []
    for i in range(processes):
        mine = tuple(cores[(i * share + j) % len(cores)] for j in range(share))
        specs.append(WorkerSpec(name=f"CPU worker {i}", backend=backend, device="cpu", cores=mine,
                                config=BackendConfig(model=config.model, threads=config.threads or share,
                                                     precision=config.precision, options=config.options)))
    return specs


class PlacedBackend(Backend):  # type: ignore[misc]  # suite.backends is backends/ (package_dir): mypy, run on suite/, sees Backend as Any
    """``backend`` on every worker of ``placement``, behind the one backend contract.

    With ``network`` (``--cluster-mode network``, MLPerf's Network division) the driver is a query
    dispatch library: the workers hold no items, the harness hands ``predict`` one whole query at a
    time from ``network`` threads (never batched), each query travels with its rows, and LoadGen
    gets the SUT's name from :meth:`network_name`, asked of every worker.
    """

    name = "placed"
    thread_safe = True
    completes_async = True

    def __init__(self, backend: str, config: BackendConfig, placement: Placement, specs: Sequence[WorkerSpec], *,
                 network: int = 0) -> None:
        super().__init__(config)
        self.backend = backend
        self.placement = placement
        self.specs = tuple(specs)
        self.network = network
        self._items: Batch | None = None
        self._seen: Batch | None = None
        self._network_name: str | None = None
        if not self.specs:
            raise ConfigError("a placement needs at least one worker")

    def load(self) -> None:
        self.placement.start(self.specs)

    def attach_items(self, items: Batch) -> None:
        fresh = items is not self._seen
        self._seen = items
        if not self.network:  # a Network SUT gets every query's rows with the query instead
            self.placement.attach(items)
            self._items = items
        if fresh:
            self.placement.measure_round_trip()

    def queries_in_flight(self) -> int:
        return self.network

    def begin_run(self) -> None:
        """Every live worker's backend is told, one round trip each (a lost worker is the run's
        to report, not this hook's; a placement that cannot ask its workers tells none)."""
        for worker in range(len(self.specs)):
            try:
                self.placement.ask(worker, "begin_run")
            except WorkerLost:
                continue
            except NotImplementedError:
                return

    def network_name(self) -> str | None:
        """``Network SUT: ...``: every worker's backend, device and node, asked of each worker (one
        round trip per worker, the first time); None unless ``network``."""
        if not self.network:
            return None
        if self._network_name is None:
            nodes = []
            for w, spec in enumerate(self.specs):
                info = self.placement.ask(w, "info")
                host = self.placement.worker_info[w].get("node", "?") if w < len(self.placement.worker_info) else "?"
                nodes.append(f"{spec.name}: {info.name} on {info.device or spec.device} at {host}")
            self._network_name = f"Network SUT: recsuite {self.backend} on {self.placement.nodes()} node(s) [{'; '.join(nodes)}]"
        return self._network_name

    def batch_defaults(self, scenario: str, target_latency_ns: int) -> BatchDefaults | None:
        try:
            one: BatchDefaults | None = self.placement.ask(0, "batch_defaults", scenario, target_latency_ns)
        except NotImplementedError:
            one = None
        if one is None:
            return None
        # Workers and batches in flight are per device: each worker process has its own.
        return BatchDefaults(max_batch_items=one.max_batch_items, batch_timeout_us=one.batch_timeout_us,
                             workers=one.workers * len(self.specs), batches_in_flight=one.batches_in_flight * len(self.specs))

    def predict(self, batch: Batch) -> np.ndarray:
        return self.predict_async(batch).result()

    def predict_async(self, batch: Batch) -> Future[np.ndarray]:
        """The batch sent, as row spans of the attached items where it is cut from them, to the
        worker holding the fewest requests; the placement has framed it when this returns."""
        request: Request = list(batch.spans) if batch.source is not None and batch.source is self._items and batch.spans else batch
        placement = self.placement
        return placement.submit(placement.least_loaded(), [request])

    def placement_info(self) -> PlacementInfo:
        info = self.placement.info()
        if not self.network:
            return info
        extra = {**info.extra, "mode": "network", "sut_name": self._network_name}
        return PlacementInfo(name=info.name, nodes=info.nodes, devices_per_node=info.devices_per_node, workers=info.workers,
                             devices=info.devices, round_trip=info.round_trip, lost=info.lost, extra=extra)

    def info(self) -> BackendInfo:
        """The first worker's info as it is now (after a run: its counters, say torch-cuda's jagged
        graph replays), asked of it; what it said when it started where it cannot answer (it died,
        or the placement cannot ask)."""
        infos = self.placement.worker_info
        first: dict[str, Any] = dict(infos[0]) if infos else {"name": self.backend, "version": "", "device": ""}
        if infos:
            try:
                first = {**first, **self.placement.ask(0, "info").to_dict()}
            except Exception:  # dead, lost with its node, timed out (Ray's own errors): the info from start stands
                pass
        extra = {k: v for k, v in first.items() if k not in ("name", "version", "device", "precision", "threads")}
        extra["placed_workers"] = len(self.specs)
        extra["dead_workers"] = self.placement.dead()
        return BackendInfo(
            name=str(first.get("name", self.backend)),
            version=str(first.get("version", "")),
            device=str(first.get("device", "")),
            precision=str(first.get("precision", self.config.precision)),
            threads=int(first.get("threads", 0) or 0),
            extra=extra,
        )

    def close(self) -> None:
        self.placement.close()


def cuda_device_count() -> int:
    """GPUs this process may use (``CUDA_VISIBLE_DEVICES`` applies); 0 without CUDA."""
    import torch

    return int(torch.cuda.device_count()) if torch.cuda.is_available() else 0


#: Scenarios in which a GPU backend runs in one worker process per GPU unless ``--devices`` says
#: otherwise. Measured on one H200 (dlrm-v2 fp8, Server at 0.9x Offline): in the driver process the
#: lanes' staging and launches contend with LoadGen's issue thread for the GIL (issues 333 ms
#: apart, INVALID, p99 84 s over 300 s); in a worker process the same load held for 300 s at a p99
#: of 9.4 ms, and Offline was the same either way (39,622 against 39,446 samples/s). SingleStream
#: and MultiStream keep one query in flight, with no contention to remove, and the worker's round
#: trip (about 0.1 ms) would add to every query's latency.
PLACED_BY_DEFAULT = ("Offline", "Server")


def default_devices(config: Any, backend_cls: type[Backend]) -> Any:
    """``config`` (a ``RunConfig``) with ``devices="all"`` where a GPU backend (``device_kind``
    ``cuda``) runs a :data:`PLACED_BY_DEFAULT` scenario and no placement was asked for and a GPU is
    visible; otherwise ``config`` as it is (without a GPU the backend's own load says why it cannot run)."""
    if (backend_cls.device_kind != "cuda" or config.devices is not None or config.processes is not None
            or config.cluster is not None or config.scenario.value not in PLACED_BY_DEFAULT):
        return config
    if cuda_device_count() < 1:
        return config
    return dataclasses.replace(config, devices="all")


def check_fits(config: Any, backend_cls: type[Backend]) -> None:
    """Refuse ``--devices``, ``--processes`` or ``--cluster`` (``config`` a ``RunConfig``) for a
    backend whose ``device_kind`` they do not fit: ``--devices`` places a GPU backend (``cuda``),
    ``--processes`` a CPU one, and a backend on other backends (``inner``) places its own workers.
    Asked of the capability, not the name, so a new GPU backend runs under them as it is."""
    name, kind = backend_cls.name, backend_cls.device_kind
    if config.cluster is not None and kind == "inner":
        raise ConfigError(f"'cluster' does not place {name} (it schedules its own workers on this host)")
    if config.devices is not None and kind != "cuda":
        raise ConfigError(f"'devices' needs a GPU backend (got {name!r}, which runs on {kind})")
    if config.processes is not None and kind in ("inner", "cuda"):
        use = "--threads for its CPU workers" if kind == "inner" else "--devices for GPUs"
        raise ConfigError(f"'processes' is for CPU backends (got {name!r}; use {use})")


def placed(config: Any, backend_cls: type[Backend], cores: int, placement: Placement) -> tuple[PlacedBackend, int, int]:
    """The backend of a ``--devices`` (other than ``in-process``) or ``--processes`` run (``config``
    a ``RunConfig``) on ``placement``'s workers (``ProcessPlacement.place``), and the (intra-op threads per worker,
    harness threads) it runs with.

    Raises:
        ConfigError: ``--devices`` names GPUs this host does not have.
    """
    if config.devices is not None:
        ids = parse_devices(config.devices, cuda_device_count())
        threads, per_worker = backend_cls.parallelism(config.scenario, cores, config.threads)
        inner = BackendConfig(model=config.model, threads=threads, precision=config.precision, options=config.backend_options)
        # A thread-safe GPU backend runs as many batches at once as it has lanes (its workers).
        lanes = int(inner.option("lanes", str(backend_cls.default_workers))) if backend_cls.thread_safe else 1
        specs = gpu_specs(backend_cls.name, inner, ids, concurrency=lanes)
        workers = max(per_worker, lanes) * len(specs)
    else:
        n = int(config.processes)
        inner = BackendConfig(model=config.model, threads=config.threads, precision=config.precision,
                              options=config.backend_options)
        specs = cpu_specs(backend_cls.name, inner, n)
        threads = specs[0].config.threads
        workers = THREADS_PER_WORKER * n
    return PlacedBackend(backend_cls.name, inner, placement, specs), threads, workers
