"""MLPerf's multi-hot Criteo: each single Criteo id expanded to its table's hotness.

DLRM-v2 reads 26 multi-hot features, but Criteo files hold one id per feature. MLPerf's
``torchrec_dlrm/scripts/multi_hot.py`` (uniform mode, the one MLPerf Inference uses) expands them
with one fixed table per feature: row r becomes ``[r, x_1 .. x_{k-1}]``, the x drawn uniformly in
[0, rows) by ``numpy.random.seed(0)`` and one ``randint(0, rows, (rows, k - 1))`` per feature in
feature order. :func:`tables` rebuilds those tables the same way, so the expansion is deterministic
and, at full scale, MLPerf's own; at a capped scale it is the same procedure over the capped rows.
"""

from __future__ import annotations

import functools

import numpy as np

from suite.datasets.batch import Batch
from suite.datasets.criteo import RawBlock
from suite.models import ModelSchema


@functools.lru_cache(maxsize=4)
def _tables(rows: tuple[int, ...], hotness: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    rng = np.random.RandomState(0)
    out = []
    for n, k in zip(rows, hotness, strict=True):
        extra = rng.randint(0, n, size=(n, k - 1))
        table = np.concatenate([np.arange(n)[:, None], extra], axis=1).astype(np.int32)
        table.setflags(write=False)
        out.append(table)
    return tuple(out)


def tables(schema: ModelSchema) -> tuple[np.ndarray | None, ...]:
    """Per table, the (rows, lookups) int32 expansion of a multi-hot table, or None for a table
    whose ids are read as they are."""
    if not any(t.multi_hot for t in schema.tables):
        return tuple(None for _ in schema.tables)
    built = _tables(tuple(t.rows for t in schema.tables), tuple(t.lookups for t in schema.tables))
    return tuple(b if t.multi_hot else None for b, t in zip(built, schema.tables, strict=False))


#: Expansion ids (rows x (hotness - 1) over all tables) above which the tables are not built whole
#: (DLRM-v2 at full scale: 6 G ids, 24 GB as int32, twice that while drawn): the random stream is
#: replayed in chunks of :data:`CHUNK_ROWS` rows instead, keeping only the rows a block uses. The
#: draws are the same either way (``randint`` in chunks continues one stream).
WHOLE_LIMIT = 1 << 28
CHUNK_ROWS = 1 << 18


class _Picked:
    """Some rows of an expansion table: ``rows[i]`` is the expansion of id ``ids[i]`` (sorted)."""

    def __init__(self, ids: np.ndarray, rows: np.ndarray) -> None:
        self.ids, self.rows = ids, rows

    def __getitem__(self, wanted: np.ndarray) -> np.ndarray:
        return self.rows[np.searchsorted(self.ids, wanted)]


def _streamed(rows: tuple[int, ...], hotness: tuple[int, ...], used: list[np.ndarray | None]) -> list[_Picked]:
    """The rows ``used`` of every table, drawn as :func:`_tables` draws them, chunk by chunk."""
    rng = np.random.RandomState(0)
    out = []
    for n, k, ids in zip(rows, hotness, used, strict=True):
        want = np.unique(ids) if ids is not None else np.empty(0, dtype=np.int64)
        picked = np.empty((len(want), k), dtype=np.int32)
        picked[:, 0] = want
        for a in range(0, n, CHUNK_ROWS):
            b = min(a + CHUNK_ROWS, n)
            extra = rng.randint(0, n, size=(b - a, k - 1))
            lo, hi = np.searchsorted(want, [a, b])
            if hi > lo:
                picked[lo:hi, 1:] = extra[want[lo:hi] - a]
        out.append(_Picked(want, picked))
    return out


def model_inputs(block: RawBlock, schema: ModelSchema) -> Batch:
    """A block of Criteo rows as ``schema``'s model inputs: dense ``log1p``, ids ``% rows``, and
    each multi-hot table's single id expanded to its hotness."""
    table_rows = [t.rows for t in schema.tables]
    hotness = tuple(t.lookups for t in schema.tables)
    if not any(t.multi_hot for t in schema.tables) or sum(n * (k - 1) for n, k in zip(table_rows, hotness, strict=False)) <= WHOLE_LIMIT:
        return block.to_batch(table_rows, expand=tables(schema))
    used = [(c[:, 0] % np.uint64(n)).astype(np.int64) if t.multi_hot else None
            for c, n, t in zip(block.cats, table_rows, schema.tables, strict=True)]
    picked = _streamed(tuple(table_rows), hotness, used)
    expand = [p if t.multi_hot else None for p, t in zip(picked, schema.tables, strict=False)]
    return block.to_batch(table_rows, expand=expand)  # type: ignore[arg-type]  # a _Picked is indexed like the whole table (to_batch only indexes it)


__all__ = ["model_inputs", "tables"]
