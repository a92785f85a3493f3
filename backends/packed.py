"""The packed item layout torch-cuda stages batches in, and the helpers that move it to a GPU.

An item is one row of int32 words: its dense features (float32 bits), then every table's ids
(:class:`PackedLayout`). A batch of rows of the attached dataset reaches the device either as the
rows themselves, by DMA from a pinned copy of the dataset (:class:`SpanDMA`, one copy a span of
rows) or through a pinned staging buffer, or as their row numbers (:func:`span_rows`), gathered on
the device from device memory (``start_from_device``) or from pinned host memory the GPU addresses
(:class:`HostView`).
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from suite.errors import BackendError
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


def span_copies(spans: Sequence[tuple[int, int]]) -> tuple[list[int], list[int], list[int]]:
    """The copies, in rows, that put the rows of ``spans`` (half-open [lo, hi)) one after another:
    each copy's first row in the destination, its first row in the source and its row count.
    A span that starts where the one before it ended joins that one's copy; empty spans make none."""
    bounds = np.asarray(spans, dtype=np.int64).reshape(-1, 2)
    bounds = bounds[bounds[:, 1] > bounds[:, 0]]
    if not len(bounds):
        return [], [], []
    lengths = bounds[:, 1] - bounds[:, 0]
    dst = np.cumsum(lengths) - lengths
    starts = np.flatnonzero(np.r_[True, bounds[1:, 0] != bounds[:-1, 1]])
    ends = np.r_[starts[1:], len(bounds)]
    rows = dst[ends - 1] + lengths[ends - 1] - dst[starts]
    return dst[starts].tolist(), bounds[starts, 0].tolist(), rows.tolist()


#: ``cudaMemcpyAsync``'s kind for host to device.
_HOST_TO_DEVICE = 1
MemcpyAsync = Callable[[int, int, int, int, int], int]


def cudart_memcpy_async() -> tuple[MemcpyAsync, Callable[[int], bytes]] | None:
    """``cudaMemcpyAsync`` and ``cudaGetErrorString`` of the CUDA runtime this process has loaded
    (torch's), through ctypes: one copy for about a microsecond of host time, where a torch
    ``copy_`` of a slice costs several. None where no CUDA runtime is loaded (a CPU build of torch).

    The calls keep the GIL (``ctypes.PyDLL``): an asynchronous copy returns in microseconds, and
    a ``ctypes.CDLL`` call that drops the GIL must win it back from the harness's other threads
    after every copy: on the H200, DLRM-v2 batches of about 105 spans took 3.6 ms of host time
    that way, against 0.6 ms for a batch from device memory."""
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            paths = sorted({line.split()[-1] for line in maps if "/libcudart.so" in line})
    except OSError:
        return None
    for path in paths:
        try:
            lib = ctypes.PyDLL(path)
            memcpy, error = lib.cudaMemcpyAsync, lib.cudaGetErrorString
        except (OSError, AttributeError):
            continue
        memcpy.restype, error.restype = ctypes.c_int, ctypes.c_char_p
        memcpy.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_void_p]
        error.argtypes = [ctypes.c_int]
        return memcpy, error
    return None


class SpanDMA:
    """A batch's rows sent by the GPU's copy engine straight from a pinned copy of the dataset:
    one host-to-device copy a span (adjacent spans merged), no host memcpy. Where the CUDA runtime
    cannot be reached through ctypes, each span is a torch ``copy_`` (same copies, more host time)."""

    def __init__(self, pinned: torch.Tensor, memcpy: tuple[MemcpyAsync, Callable[[int], bytes]] | None) -> None:
        self.pinned = pinned
        self.row_bytes = pinned.stride(0) * pinned.element_size()
        self._memcpy = memcpy

    @property
    def native(self) -> bool:
        """Whether copies go through the CUDA runtime directly (else through torch)."""
        return self._memcpy is not None

    def copy(self, spans: Sequence[tuple[int, int]], dev: torch.Tensor, stream: torch.cuda.Stream) -> int:
        """Enqueue on ``stream`` the copies that put the rows of ``spans`` into ``dev``'s first rows;
        the number of copies. ``dev`` is a contiguous device tensor of rows as wide as the dataset's."""
        dst, src, rows = span_copies(spans)
        if self._memcpy is None:
            with torch.cuda.stream(stream):
                for d, s, k in zip(dst, src, rows, strict=True):
                    dev[d : d + k].copy_(self.pinned[s : s + k], non_blocking=True)
            return len(dst)
        memcpy, error = self._memcpy
        row, base_dev, base_host, handle = self.row_bytes, dev.data_ptr(), self.pinned.data_ptr(), stream.cuda_stream
        for d, s, k in zip(dst, src, rows, strict=True):
            code = memcpy(base_dev + d * row, base_host + s * row, k * row, _HOST_TO_DEVICE, handle)
            if code:
                raise BackendError(f"cudaMemcpyAsync of {k} rows failed: {error(code).decode()} (error {code})")
        return len(dst)


class HostView:
    """Pinned host memory under ``__cuda_array_interface__``, for ``torch.as_tensor`` to view it
    as a CUDA tensor: under unified addressing a pinned allocation has the same address on the GPU.
    Keeps the pinned tensor alive as long as the view (torch holds this object)."""

    def __init__(self, pinned: torch.Tensor) -> None:
        self.pinned = pinned
        self.__cuda_array_interface__ = {
            "shape": tuple(pinned.shape), "typestr": "<i4", "data": (pinned.data_ptr(), False), "version": 2, "strides": None,
        }
