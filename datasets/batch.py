"""The unit a backend predicts on."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np


class _Buffers(Protocol):
    def take(self, like: Batch, n: int) -> Batch: ...


class Batch:
    """N items (user-item pairs) ready for a model.

    Attributes:
        dense: (N, D) float32, already transformed (log1p of the clipped counts).
        sparse: one (N, L_t) int32 array of row ids per table, ids in [0, rows_t).

    A batch the harness forms from several queries that are not adjacent is *gathered lazily*: it
    knows its ``source`` arrays and the ``spans`` of rows it covers, and copies them into
    contiguous arrays only when ``dense`` or ``sparse`` is first read. A backend that can read the
    spans itself (straight into a pinned staging buffer, say, or not at all) skips that copy. A
    batch that is a view of one span of a dataset also names its ``source`` and ``spans``, so a
    backend that shares the dataset with worker processes can send row ranges instead of arrays.
    """

    __slots__ = ("_dense", "_n", "_sparse", "_staging", "source", "spans")

    def __init__(self, dense: np.ndarray, sparse: tuple[np.ndarray, ...]) -> None:
        self._dense: np.ndarray | None = dense
        self._sparse: tuple[np.ndarray, ...] | None = sparse
        self._n = int(dense.shape[0])
        self.source: Batch | None = None
        self.spans: Sequence[tuple[int, int]] = ()
        self._staging: _Buffers | None = None

    @classmethod
    def gathered(cls, source: Batch, spans: Sequence[tuple[int, int]], staging: _Buffers | None = None) -> Batch:
        """The rows ``spans`` of ``source``, concatenated when first read (into ``staging`` if given)."""
        batch = cls.__new__(cls)
        batch._dense = None
        batch._sparse = None
        batch._n = sum(hi - lo for lo, hi in spans)
        batch.source = source
        batch.spans = spans
        batch._staging = staging
        return batch

    @classmethod
    def of_spans(cls, source: Batch, spans: Sequence[tuple[int, int]], staging: _Buffers | None = None) -> Batch:
        """The rows ``spans`` of ``source``: views for one span, a lazily gathered batch for several."""
        if len(spans) == 1:
            lo, hi = spans[0]
            batch = cls(dense=source.dense[lo:hi], sparse=tuple(s[lo:hi] for s in source.sparse))
            batch.source = source
            batch.spans = spans
            return batch
        return cls.gathered(source, spans, staging)

    def __len__(self) -> int:
        return self._n

    @property
    def dense(self) -> np.ndarray:
        if self._dense is None:
            self._materialize()
        assert self._dense is not None
        return self._dense

    @property
    def sparse(self) -> tuple[np.ndarray, ...]:
        if self._sparse is None:
            self._materialize()
        assert self._sparse is not None
        return self._sparse

    def copy_into(self, dense: np.ndarray, sparse: Sequence[np.ndarray]) -> None:
        """Write the batch's rows into the first ``len(self)`` rows of ``dense`` and ``sparse``
        (a lazily gathered batch straight from its source's spans, without gathering first)."""
        n = self._n
        if self._dense is None:
            src = self.source
            assert src is not None
            # One memcpy per span and array: ten times faster than np.take over a row index.
            np.concatenate([src.dense[lo:hi] for lo, hi in self.spans], out=dense[:n])
            for t, s in enumerate(src.sparse):
                np.concatenate([s[lo:hi] for lo, hi in self.spans], out=sparse[t][:n])
        else:
            dense[:n] = self._dense
            for t, s in enumerate(self.sparse):
                sparse[t][:n] = s

    def _materialize(self) -> None:
        src = self.source
        assert src is not None
        n = self._n
        out = self._staging.take(src, n) if self._staging is not None else Batch(
            dense=np.empty((n, *src.dense.shape[1:]), dtype=src.dense.dtype),
            sparse=tuple(np.empty((n, *s.shape[1:]), dtype=s.dtype) for s in src.sparse),
        )
        self.copy_into(out.dense, out.sparse)
        self._dense, self._sparse = out.dense, out.sparse
