"""DeepRecSched as a package: :mod:`.policy` (setting, split), :mod:`.tune` (its tuner, the climb
over B and Q), :mod:`.pool` (CPU workers through ``suite.placement``), :mod:`.accelerator`
(offloaded queries) and :mod:`.backend` (the backend)."""

from __future__ import annotations

from .backend import DeepRecSchedBackend
from .policy import ACCEL_BATCH_ITEMS, NO_OFFLOAD, POOLS, WHOLE_QUERY, SchedConfig, cut_spans, split

__all__ = ["ACCEL_BATCH_ITEMS", "NO_OFFLOAD", "POOLS", "WHOLE_QUERY", "DeepRecSchedBackend", "SchedConfig",
           "cut_spans", "split"]
