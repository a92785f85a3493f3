"""DeepRecSched's CPU workers, placed through the placement seam (``suite.placement``).

``pool=process`` places one spawned process per worker (the registry's ``processes`` placement,
:class:`~suite.placement.local.ProcessPlacement`, the same code ``suite run --devices``/``--processes`` uses), each running the CPU backend with one
intra-op thread, pinned to one core where the OS allows; ``pool=thread`` places threads of this
process sharing one thread-safe CPU backend.
"""

from __future__ import annotations

import os

from suite.backends import get_backend
from suite.backends.base import BackendConfig
from suite.errors import ConfigError
from suite.models import ModelSpec
from suite.placement import Placement, WorkerSpec, get_placement

from .policy import SchedConfig

#: The registered placement (``suite.placement.PLACEMENTS``) each ``pool`` option value names.
PLACEMENT_OF_POOL = {"process": "processes", "thread": "threads"}


def worker_specs(sched: SchedConfig, model: ModelSpec, precision: str) -> list[WorkerSpec]:
    """One spec per CPU worker: the CPU backend with one thread, the run's precision and the CPU
    backend's own options (``sched.cpu_options``), each pinned to its own core (round robin over
    the cores this process may use) when ``pin`` and processes."""
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    pin = sched.pin and sched.pool == "process" and bool(cores)
    config = BackendConfig(model=model, threads=1, precision=precision, options=sched.cpu_options)
    return [
        WorkerSpec(name=f"CPU worker {i}", backend=sched.cpu_backend, config=config, device="cpu",
                   cores=(cores[i % len(cores)],) if pin else ())
        for i in range(sched.cpu_workers)
    ]


def start_pool(sched: SchedConfig, model: ModelSpec, precision: str) -> Placement:
    """The CPU workers of ``sched``, started and loaded (their config checked here first, so a
    precision or option the CPU backend refuses is the run's one-line error, not a worker's)."""
    specs = worker_specs(sched, model, precision)
    get_backend(sched.cpu_backend).check_config(specs[0].config)
    if sched.pool == "thread" and not get_backend(sched.cpu_backend).thread_safe:
        raise ConfigError(f"'pool' thread needs a thread-safe cpu_backend (got {sched.cpu_backend!r})")
    placement = get_placement(PLACEMENT_OF_POOL[sched.pool])()
    placement.start(specs)
    return placement
