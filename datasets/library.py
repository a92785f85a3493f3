"""The query-sample library: LoadGen's samples are user queries, each a run of k items."""

from __future__ import annotations

import numpy as np

from suite.datasets.batch import Batch
from suite.datasets.store import Dataset


class QueryLibrary:
    """Queries laid over a dataset's items: query i is items ``[offsets[i], offsets[i + 1])``.

    ``gather`` builds the batch for a list of queries, with zero copies when they are one query or
    consecutive ones.
    """

    def __init__(self, dataset: Dataset, offsets: np.ndarray) -> None:
        if offsets[0] != 0 or offsets[-1] != len(dataset) or np.any(np.diff(offsets) <= 0):
            raise ValueError("offsets must rise strictly from 0 to the dataset's length")
        self.dataset = dataset
        self.offsets = offsets.astype(np.int64)
        self.sizes = np.diff(self.offsets)
        #: Python ints, for the harness's per-query bookkeeping without numpy scalars.
        self.size_list: list[int] = self.sizes.tolist()
        self.offset_list: list[int] = self.offsets.tolist()

    def __len__(self) -> int:
        return len(self.sizes)

    @property
    def items(self) -> Batch:
        return self.dataset.items

    def gather(self, indices: list[int] | np.ndarray, staging: Staging | None = None) -> Batch:
        """The items of the queries ``indices``, concatenated in that order.

        One query, or consecutive ones, come back as views without a copy. Otherwise the batch is
        gathered lazily (see :class:`Batch`): the rows are copied only if the backend reads them,
        into ``staging``'s reused buffers when given, which spares the page faults of a fresh
        multi-megabyte allocation per batch.
        """
        items = self.dataset.items
        offsets = self.offset_list
        # Consecutive queries are one contiguous span; only the gaps between runs cost a copy.
        spans: list[tuple[int, int]] = []
        end = -1
        for i in indices:
            lo = offsets[i]
            if lo == end:
                end = offsets[i + 1]
                spans[-1] = (spans[-1][0], end)
            else:
                end = offsets[i + 1]
                spans.append((lo, end))
        return Batch.of_spans(items, spans, staging)


class Staging:
    """Reusable buffers for gathered batches, grown on demand; one per harness worker.

    A batch built in them is valid until the next ``take``, which is enough for the synchronous
    ``Backend.predict`` contract.
    """

    def __init__(self) -> None:
        self._buffers: Batch | None = None

    def take(self, like: Batch, n: int) -> Batch:
        """Buffers for ``n`` rows shaped like ``like``'s arrays."""
        buf = self._buffers
        if buf is None or len(buf) < n:
            capacity = max(n, 2 * len(buf) if buf is not None else n)
            buf = Batch(
                dense=np.empty((capacity, *like.dense.shape[1:]), dtype=like.dense.dtype),
                sparse=tuple(np.empty((capacity, *s.shape[1:]), dtype=s.dtype) for s in like.sparse),
            )
            self._buffers = buf
        return Batch(dense=buf.dense[:n], sparse=tuple(s[:n] for s in buf.sparse))
