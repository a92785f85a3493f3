"""``suite data import``: a real Criteo file into the npy cache, once."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from suite.datasets import criteo, store
from suite.datasets.batch import Batch
from suite.datasets.multihot import model_inputs
from suite.errors import DatasetError
from suite.inputs import check_writable_dir
from suite.models import ModelSpec


def import_file(
    path: Path,
    spec: ModelSpec,
    *,
    out: Path | None = None,
    limit: int | None = None,
    data_dir: Path | None = None,
    progress: bool = False,
) -> Path:
    """Parse ``path`` for ``spec``'s schema (ids hashed with ``% rows``) and save it as a dataset.

    The file's layout comes from the schema: one column per table holding the ids a file carries,
    which is one id for a multi-hot table (DLRM-v2 reads real Criteo files, one id per feature, and
    expands each as MLPerf's multi-hot Criteo does).

    Raises:
        DatasetError: the file is unreadable, malformed (with the line), or empty.
    """
    schema = spec.schema
    layout = criteo.layout_for(schema)
    table_rows = [t.rows for t in schema.tables]
    target = out or store.data_root(data_dir) / "imported" / f"{path.name.split('.')[0]}-{spec.key()}"
    if (target / "meta.json").is_file():
        raise DatasetError(f"{target} already exists; remove it or pass another --out")
    check_writable_dir("out", target.parent)  # before reading the file, not after
    total = path.stat().st_size if path.exists() else 0
    dense: list[np.ndarray] = []
    sparse: list[list[np.ndarray]] = [[] for _ in table_rows]
    labels: list[np.ndarray] = []
    rows = 0
    started = time.perf_counter()
    for block in criteo.read(path, layout, limit=limit):
        batch = model_inputs(block, schema)
        dense.append(batch.dense)
        for t, ids in enumerate(batch.sparse):
            sparse[t].append(ids)
        labels.append(block.labels)
        rows += len(block)
        if progress:
            rate = rows / max(time.perf_counter() - started, 1e-9)
            sys.stderr.write(f"\r  {rows:,} rows read ({rate:,.0f} rows/s)")
            sys.stderr.flush()
    if progress:
        sys.stderr.write("\n")
    if rows == 0:
        raise DatasetError(f"{path} holds no rows")
    items = Batch(dense=np.concatenate(dense), sparse=tuple(np.concatenate(s) for s in sparse))
    meta = {
        "source": "criteo",
        "file": str(path),
        "file_bytes": total,
        "model": spec.to_dict(),
        "dense": schema.dense,
        "lookups": list(schema.lookups),
        "file_lookups": list(schema.file_lookups),
        "table_rows": table_rows,
        "tasks": schema.tasks,
        "labels": "file",
        "reference_auc": None,
        "click_rate": [float(v) for v in np.concatenate(labels).mean(axis=0)],
    }
    return store.save(target, items, np.concatenate(labels), meta)
