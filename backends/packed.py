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


def span_copies(spans: Sequence[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The copies, in rows, that put the rows of ``spans`` (half-open [lo, hi)) one after another:
    each copy's first row in the destination, its first row in the source and its row count, as
    int64 arrays. A span that starts where the one before it ended joins that one's copy; empty
    spans make none."""
    bounds = np.asarray(spans, dtype=np.int64).reshape(-1, 2)
    bounds = bounds[bounds[:, 1] > bounds[:, 0]]
    if not len(bounds):
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    lengths = bounds[:, 1] - bounds[:, 0]
    dst = np.cumsum(lengths) - lengths
    starts = np.flatnonzero(np.r_[True, bounds[1:, 0] != bounds[:-1, 1]])
    ends = np.r_[starts[1:], len(bounds)]
    rows = dst[ends - 1] + lengths[ends - 1] - dst[starts]
    return dst[starts], bounds[starts, 0], rows


#: ``cudaMemcpyAsync``'s kind for host to device.
_HOST_TO_DEVICE = 1
#: ``cudaMemcpySrcAccessOrderStream``: a batched copy reads its sources in stream order, as
#: ``cudaMemcpyAsync`` does. The pinned dataset never changes under a run, so a looser order would
#: read the same bytes; the copies run in stream order whatever this says, so a lane's device
#: buffer is written only after the batch before has read it.
_SRC_ACCESS_ORDER_STREAM = 1
MemcpyAsync = Callable[[int, int, int, int, int], int]
#: ``(dsts, srcs, sizes, count, stream) -> cudaError_t``: the addresses of three arrays of
#: ``count`` 64-bit words (destination and source addresses, byte counts).
MemcpyBatchAsync = Callable[[int, int, int, int, int], int]
#: How ``staging=dma`` issues a batch's copies (torch-cuda's option ``dma``): ``batch``, one
#: ``cudaMemcpyBatchAsync`` for every span (CUDA 12.8 and later; the default where it works),
#: or ``span``, one ``cudaMemcpyAsync`` a span. On the H200 (CUDA 13.0), 105 spans of 270 DLRM-v2
#: rows took the host 156 us in one call against 517 us in 105, and the copy engine 0.55 ms against
#: 0.81; DLRM-v2 fp8 Server at 0.9x Offline, 20 s: batch VALID (p99 11.7 ms, 546 us of host time a
#: batch), span INVALID (p99 454 ms, 1,399 us); then 300 s VALID (benchmarks/results/gpu_server_h200_s9).
DMA_CALLS = ("batch", "span")


class _MemcpyAttributes(ctypes.Structure):
    """``cudaMemcpyAttributes``: the source access order, two ``cudaMemLocation`` hints (type, id;
    ignored for memory CUDA allocated, left invalid) and flags."""

    _fields_ = [("src_access_order", ctypes.c_int), ("src_hint_type", ctypes.c_int), ("src_hint_id", ctypes.c_int),
                ("dst_hint_type", ctypes.c_int), ("dst_hint_id", ctypes.c_int), ("flags", ctypes.c_uint)]


def _cudart() -> ctypes.PyDLL | None:
    """The CUDA runtime this process has loaded (torch's), through ctypes; None where there is none
    (a CPU build of torch).

    Its functions keep the GIL (``ctypes.PyDLL``): an asynchronous copy returns in microseconds, and
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
        except OSError:
            continue
        if not (hasattr(lib, "cudaMemcpyAsync") and hasattr(lib, "cudaGetErrorString")):
            continue
        lib.cudaGetErrorString.restype, lib.cudaGetErrorString.argtypes = ctypes.c_char_p, [ctypes.c_int]
        return lib
    return None


def cudart_memcpy_async() -> tuple[MemcpyAsync, Callable[[int], bytes]] | None:
    """``cudaMemcpyAsync`` and ``cudaGetErrorString`` of the CUDA runtime this process has loaded
    (:func:`_cudart`): one copy for about a microsecond of host time, where a torch ``copy_`` of a
    slice costs several. None where no CUDA runtime is loaded."""
    lib = _cudart()
    if lib is None:
        return None
    memcpy = lib.cudaMemcpyAsync
    memcpy.restype = ctypes.c_int
    memcpy.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_void_p]
    return memcpy, lib.cudaGetErrorString


def cudart_memcpy_batch_async() -> tuple[MemcpyBatchAsync, Callable[[int], bytes]] | None:
    """``cudaMemcpyBatchAsync`` of the CUDA runtime this process has loaded, as
    :data:`MemcpyBatchAsync`, with every copy in stream order: the copies of a batch's spans in one
    call, where :class:`SpanDMA` otherwise makes one call a span (about 105 a DLRM-v2 Server batch).
    None where the runtime has no such function (before CUDA 12.8). CUDA 13 dropped the
    ``failIdx`` argument 12.8 had before the stream; the runtime's version says which it takes."""
    lib = _cudart()
    if lib is None:
        return None
    version = ctypes.c_int(0)
    try:
        lib.cudaRuntimeGetVersion.restype = ctypes.c_int
        if lib.cudaRuntimeGetVersion(ctypes.byref(version)) or version.value < 12080:
            return None
        batch = lib.cudaMemcpyBatchAsync
    except AttributeError:
        return None
    attrs = _MemcpyAttributes(src_access_order=_SRC_ACCESS_ORDER_STREAM)
    first = (ctypes.c_size_t * 1)(0)
    fail = ctypes.c_size_t(0)
    batch.restype = ctypes.c_int
    head = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
    if version.value >= 13000:
        batch.argtypes = [*head, ctypes.c_void_p]

        def call(dsts: int, srcs: int, sizes: int, count: int, stream: int) -> int:
            return int(batch(dsts, srcs, sizes, count, ctypes.byref(attrs), first, 1, stream))
    else:
        batch.argtypes = [*head, ctypes.c_void_p, ctypes.c_void_p]

        def call(dsts: int, srcs: int, sizes: int, count: int, stream: int) -> int:
            return int(batch(dsts, srcs, sizes, count, ctypes.byref(attrs), first, 1, ctypes.byref(fail), stream))
    return call, lib.cudaGetErrorString


class SpanDMA:
    """A batch's rows sent by the GPU's copy engine straight from a pinned copy of the dataset:
    one host-to-device copy a span (adjacent spans merged), no host memcpy, issued in one
    ``cudaMemcpyBatchAsync`` where ``batch`` is given, else one ``cudaMemcpyAsync`` a copy. Where
    the CUDA runtime cannot be reached through ctypes, each span is a torch ``copy_`` (same copies,
    more host time)."""

    def __init__(self, pinned: torch.Tensor, memcpy: tuple[MemcpyAsync, Callable[[int], bytes]] | None,
                 batch: tuple[MemcpyBatchAsync, Callable[[int], bytes]] | None = None) -> None:
        self.pinned = pinned
        self.row_bytes = pinned.stride(0) * pinned.element_size()
        self._memcpy = memcpy
        self._batch = batch if memcpy is not None else None

    @property
    def native(self) -> bool:
        """Whether copies go through the CUDA runtime directly (else through torch)."""
        return self._memcpy is not None

    @property
    def calls(self) -> str:
        """How a batch's copies are issued: ``batch`` (one call), ``span`` (a call a copy) or
        ``torch`` (a torch copy a span)."""
        return "batch" if self._batch is not None else "span" if self._memcpy is not None else "torch"

    def check_batch(self, device: torch.device) -> str | None:
        """Try one batched copy of the dataset's first and last rows into a scratch buffer on a
        new stream; where it fails or moves other bytes, stop batching (one call a span from then
        on) and say why. None when batching works, or was not on."""
        if self._batch is None:
            return None
        n = len(self.pinned)
        spans = [(n - 1, n), (0, 1)]
        try:
            dev = torch.full((2, *self.pinned.shape[1:]), -1, dtype=self.pinned.dtype, device=device)
            stream = torch.cuda.Stream(device)
            self.copy(spans, dev, stream)
            stream.synchronize()
            if not torch.equal(dev.cpu(), torch.cat([self.pinned[n - 1 : n], self.pinned[:1]])):
                raise BackendError("cudaMemcpyBatchAsync moved other bytes than the spans' rows")
        except Exception as exc:
            self._batch = None
            return f"dma: batched copies failed ({type(exc).__name__}: {exc}); one cudaMemcpyAsync a span"
        return None

    def copy(self, spans: Sequence[tuple[int, int]], dev: torch.Tensor, stream: torch.cuda.Stream) -> int:
        """Enqueue on ``stream`` the copies that put the rows of ``spans`` into ``dev``'s first rows;
        the number of copies. ``dev`` is a contiguous device tensor of rows as wide as the dataset's."""
        dst, src, rows = span_copies(spans)
        if self._memcpy is None:
            with torch.cuda.stream(stream):
                for d, s, k in zip(dst.tolist(), src.tolist(), rows.tolist(), strict=True):
                    dev[d : d + k].copy_(self.pinned[s : s + k], non_blocking=True)
            return len(dst)
        row, base_dev, base_host, handle = self.row_bytes, dev.data_ptr(), self.pinned.data_ptr(), stream.cuda_stream
        if self._batch is not None and len(dst) > 1:
            batch, error = self._batch
            dsts, srcs, sizes = dst * row + base_dev, src * row + base_host, rows * row
            code = batch(dsts.ctypes.data, srcs.ctypes.data, sizes.ctypes.data, len(dst), handle)
            if code:
                raise BackendError(f"cudaMemcpyBatchAsync of {len(dst)} copies failed: {error(code).decode()} (error {code})")
            return len(dst)
        memcpy, error = self._memcpy
        for d, s, k in zip(dst.tolist(), src.tolist(), rows.tolist(), strict=True):
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
