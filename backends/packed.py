"""The packed item layout torch-cuda stages batches in, and the helpers that move it to a GPU.

An item is one row of int32 words: its dense features (float32 bits), then every table's ids
(:class:`PackedLayout`). A batch of rows of the attached dataset reaches the device either as the
rows themselves or as their row numbers (:func:`span_rows`), gathered on the device from device
memory (``start_from_device``) or from pinned host memory the GPU addresses (:class:`HostView`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from suite.models import ModelSchema


@dataclass(frozen=True)
class PackedLayout:
    """Where an item's features sit in its packed row of int32 words: the dense features (float32
    bits) in words ``[0, dense)``, table t's ids in ``[offsets[t], offsets[t] + lookups[t])``."""

    dense: int
    offsets: tuple[int, ...]
    lookups: tuple[int, ...]

    @classmethod
    def of(cls, schema: ModelSchema) -> PackedLayout:
        offsets, at = [], schema.dense
        for lookups in schema.lookups:
            offsets.append(at)
            at += lookups
        return cls(dense=schema.dense, offsets=tuple(offsets), lookups=schema.lookups)

    @property
    def words(self) -> int:
        return self.dense + sum(self.lookups)

    def pack(self, dense: np.ndarray, sparse: tuple[np.ndarray, ...] | list[np.ndarray], out: np.ndarray | None = None) -> np.ndarray:
        """Items as packed rows (N, words) int32, written into ``out`` when given."""
        n = dense.shape[0]
        rows = np.empty((n, self.words), dtype=np.int32) if out is None else out[:n]
        rows[:, : self.dense] = np.ascontiguousarray(dense, dtype=np.float32).view(np.int32)
        for off, lookups, ids in zip(self.offsets, self.lookups, sparse, strict=False):
            rows[:, off : off + lookups] = ids
        return rows

    def unpack(self, rows: Any) -> tuple[Any, list[Any]]:
        """Views of packed rows (a torch tensor or numpy array): dense float32 (N, D) and each
        table's ids (N, L_t) int32."""
        if isinstance(rows, np.ndarray):
            dense = rows[:, : self.dense].view(np.float32)
        else:
            dense = rows[:, : self.dense].view(torch.float32)
        return dense, [rows[:, off : off + k] for off, k in zip(self.offsets, self.lookups, strict=False)]


def span_rows(spans: Sequence[tuple[int, int]], out: np.ndarray) -> np.ndarray:
    """The row numbers of ``spans`` (half-open [lo, hi) ranges) one after another, into ``out``
    (int64, as long as the spans hold rows), without a Python loop over rows."""
    if len(spans) == 1:
        lo, hi = spans[0]
        out[:] = np.arange(lo, hi)
        return out
    bounds = np.asarray(spans, dtype=np.int64)
    lengths = bounds[:, 1] - bounds[:, 0]
    # Row j of span s is lo_s + (j - first_s): one arange plus each span's shift, repeated.
    shift = bounds[:, 0] - (np.cumsum(lengths) - lengths)
    np.add(np.arange(len(out), dtype=np.int64), np.repeat(shift, lengths), out=out)
    return out


class HostView:
    """Pinned host memory under ``__cuda_array_interface__``, for ``torch.as_tensor`` to view it
    as a CUDA tensor: under unified addressing a pinned allocation has the same address on the GPU.
    Keeps the pinned tensor alive as long as the view (torch holds this object)."""

    def __init__(self, pinned: torch.Tensor) -> None:
        self.pinned = pinned
        self.__cuda_array_interface__ = {
            "shape": tuple(pinned.shape), "typestr": "<i4", "data": (pinned.data_ptr(), False), "version": 2, "strides": None,
        }
