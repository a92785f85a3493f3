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
    return tuple(b if t.multi_hot else None for b, t in zip(built, schema.tables))


def model_inputs(block: RawBlock, schema: ModelSchema) -> Batch:
    """A block of Criteo rows as ``schema``'s model inputs: dense ``log1p``, ids ``% rows``, and
    each multi-hot table's single id expanded to its hotness."""
    return block.to_batch([t.rows for t in schema.tables], expand=tables(schema))


__all__ = ["model_inputs", "tables"]
