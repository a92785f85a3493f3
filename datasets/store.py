"""Datasets on disk: numpy ``.npy`` files memory-mapped at run time, plus a ``meta.json``.

A dataset folder holds ``dense.npy`` (N, D) float32, ``sparse_<t>.npy`` (N, L_t) int32 per table,
``labels.npy`` (N, tasks) int8 and ``meta.json`` (where it came from, the model and scale its ids
were hashed for, the teacher's calibration and the reference AUC). It is written to a temporary
folder and renamed into place, so a crash never leaves half a dataset behind.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from suite.datasets.batch import Batch
from suite.errors import DatasetError

FORMAT_VERSION = 1


def data_root(explicit: Path | None = None) -> Path:
    """Where generated and imported datasets are cached: ``--data-dir``, else ``$RECSUITE_DATA_DIR``,
    else ``~/.cache/recsuite/data``."""
    if explicit is not None:
        return explicit
    env = os.environ.get("RECSUITE_DATA_DIR")
    if env:
        return Path(env)
    return Path.home() / ".cache" / "recsuite" / "data"


@dataclass(frozen=True)
class Dataset:
    """A dataset loaded from disk: the model inputs of every item and their labels."""

    path: Path
    meta: Mapping[str, Any]
    items: Batch
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.items)

    @property
    def reference_auc(self) -> list[float] | None:
        """The teacher's AUC per task on these labels (None for real data)."""
        ref = self.meta.get("reference_auc")
        return None if ref is None else [float(v) for v in ref]

    @classmethod
    def load(cls, path: Path, *, in_memory: bool = True) -> Dataset:
        """Load a dataset folder; ``in_memory`` copies the arrays into RAM instead of mapping them."""
        meta_path = path / "meta.json"
        if not meta_path.is_file():
            raise DatasetError(f"{path} is not a recsuite dataset (no meta.json)")
        try:
            meta = json.loads(meta_path.read_text())
            tables = int(meta["tables"])
            mode = None if in_memory else "r"
            dense = np.load(path / "dense.npy", mmap_mode=mode)
            sparse = tuple(np.load(path / f"sparse_{t:02d}.npy", mmap_mode=mode) for t in range(tables))
            labels = np.load(path / "labels.npy", mmap_mode=mode)
        except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
            raise DatasetError(f"{path}: unreadable dataset ({exc})") from None
        n = dense.shape[0]
        if any(s.shape[0] != n for s in sparse) or labels.shape[0] != n:
            raise DatasetError(f"{path}: arrays disagree in length")
        return cls(path=path, meta=meta, items=Batch(dense=dense, sparse=sparse), labels=labels)


def save(path: Path, items: Batch, labels: np.ndarray, meta: Mapping[str, Any]) -> Path:
    """Write a dataset folder atomically; if another writer got there first, keep theirs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        np.save(tmp / "dense.npy", np.ascontiguousarray(items.dense, dtype=np.float32))
        for t, ids in enumerate(items.sparse):
            np.save(tmp / f"sparse_{t:02d}.npy", np.ascontiguousarray(ids, dtype=np.int32))
        np.save(tmp / "labels.npy", np.ascontiguousarray(labels, dtype=np.int8))
        full = {"format": FORMAT_VERSION, "items": len(items), "tables": len(items.sparse), **meta}
        (tmp / "meta.json").write_text(json.dumps(full, indent=2, sort_keys=True) + "\n")
        try:
            tmp.rename(path)
        except OSError:
            if not (path / "meta.json").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return path
