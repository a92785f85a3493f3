"""DeepRecSched's policy: the scheduler's setting, and how a query is cut into CPU requests.

A query of k items with k >= Q goes whole to the accelerator; a smaller one is cut into
ceil(k / B) requests of B items (the last holds the remainder). ``suite tune`` searches B and Q.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from suite.backends import REGISTRY
from suite.backends.base import BackendConfig
from suite.errors import ConfigError, one_of

POOLS = ("process", "thread")
#: ``batch_items`` 0: every query is one request (the static baseline); ``offload_items`` 0: never offload.
WHOLE_QUERY = 0
NO_OFFLOAD = 0
#: An accelerator thread takes the offloaded queries waiting for it as one batch until it holds this
#: many items: one query per call would leave the accelerator to the host's per-call overhead.
ACCEL_BATCH_ITEMS = 2048


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
        cpu_options: the CPU backend's own ``--option`` pairs (``dense=bf16``, ``quantization=qdq``),
            handed to every CPU worker as a run on that backend would get them.
    """

    cpu_backend: str = "torch-cpu"
    accelerator: str = "none"
    cpu_workers: int
    batch_items: int = WHOLE_QUERY
    offload_items: int = NO_OFFLOAD
    pool: str = "process"
    pin: bool = True
    cpu_options: tuple[tuple[str, str], ...] = ()

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
        """Parse ``config.options`` (checked first by ``DeepRecSchedBackend.check_options``);
        ``config.threads`` is the number of CPU workers (0: one per core). A key that is not the
        scheduler's is the CPU backend's, kept in order in ``cpu_options``."""
        values: dict[str, Any] = {}
        cpu_options: list[tuple[str, str]] = []
        for key, text in config.options:
            if key not in cls.OPTIONS:
                cpu_options.append((key, text))
            elif key in ("batch_items", "offload_items"):
                try:
                    values[key] = int(text)
                except ValueError:
                    raise ConfigError(f"'{key}' must be an integer (got {text!r})") from None
            elif key == "pin":
                one_of("pin", text, ["0", "1", "false", "true"])
                values[key] = text in ("1", "true")
            else:
                values[key] = text
        return cls(cpu_workers=config.resolved_threads, cpu_options=tuple(cpu_options), **values)

    def options(self) -> tuple[tuple[str, str], ...]:
        """This setting as ``--option`` pairs (without ``cpu_workers``, which is ``--threads``): the
        scheduler's, then the CPU backend's."""
        return tuple((k, str(int(v)) if isinstance(v, bool) else str(v)) for k, v in sorted(self.to_dict().items())
                     if k in self.OPTIONS) + self.cpu_options

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "cpu_options": dict(self.cpu_options)}

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
