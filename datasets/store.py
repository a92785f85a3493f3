"""Datasets on disk: numpy ``.npy`` files memory-mapped at run time, plus a ``meta.json``.

A dataset folder holds ``dense.npy`` (N, D) float32, ``sparse_<t>.npy`` (N, L_t) int32 per table,
``labels.npy`` (N, tasks) int8 and ``meta.json`` (where it came from, the model and scale its ids
were hashed for, the teacher's calibration and the reference AUC). It is written to a temporary
folder and renamed into place, so a crash never leaves half a dataset behind.

``meta.json`` records every array's file size, shape, dtype and SHA-256 (``arrays``). Every load
checks the sizes, shapes and dtypes (a ``stat`` and a header read per file); the SHA-256 of the
bytes is checked by :func:`verify` with ``checksums=True`` (``suite data verify``): it reads every
byte at about 0.45 GB/s, more than the load itself costs.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from suite.datasets.batch import Batch
from suite.errors import DatasetError

#: 2: ``meta.json`` records each array's bytes, shape, dtype and sha256.
FORMAT_VERSION = 2
#: What :func:`verify` says of a dataset written before format 2.
UNCHECKED = "written before recsuite recorded checksums (format 1): no sha256 to check"
#: Largest ``meta.json`` read.
MAX_META_BYTES = 1 << 20


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
    #: Per-item arrays beside the model inputs (``<name>.npy``, listed in meta's ``extra_arrays``):
    #: dlrm-v3's ``keys``, each request's (ts_idx, query_idx) for TEST08.
    extra: Mapping[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def reference_auc(self) -> list[float] | None:
        """The teacher's AUC per task on these labels (None for real data)."""
        ref = self.meta.get("reference_auc")
        return None if ref is None else [float(v) for v in ref]

    @classmethod
    def load(cls, path: Path, *, in_memory: bool = True) -> Dataset:
        """Load a dataset folder; ``in_memory`` copies the arrays into RAM instead of mapping them.

        Raises:
            DatasetError: the folder is not a dataset, or is damaged (a file missing, of the wrong
                size, shape or dtype); the message names the first problem.
        """
        meta = read_meta(path)
        problem = check_arrays(path, meta)
        if problem is not None:
            raise DatasetError(f"{path}: damaged dataset ({problem})")
        tables = int(meta["tables"])
        mode = None if in_memory else "r"
        try:
            dense = np.load(path / "dense.npy", mmap_mode=mode)
            sparse = tuple(np.load(path / f"sparse_{t:02d}.npy", mmap_mode=mode) for t in range(tables))
            labels = np.load(path / "labels.npy", mmap_mode=mode)
            extra = {name: np.load(path / f"{name}.npy", mmap_mode=mode) for name in extra_names(meta)}
        except (OSError, ValueError, EOFError) as exc:
            raise DatasetError(f"{path}: damaged dataset ({exc})") from None
        n = dense.shape[0]
        if any(s.shape[0] != n for s in sparse) or labels.shape[0] != n or any(a.shape[0] != n for a in extra.values()):
            raise DatasetError(f"{path}: arrays disagree in length")
        return cls(path=path, meta=meta, items=Batch(dense=dense, sparse=sparse), labels=labels, extra=extra)


_EXTRA_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")
_RESERVED = re.compile(r"dense|labels|sparse_[0-9]+")


def extra_names(meta: Mapping[str, Any]) -> list[str]:
    """The extra per-item arrays meta.json lists (``extra_arrays``); names a file could not safely
    carry are refused as damage."""
    names = meta.get("extra_arrays", [])
    if not isinstance(names, list) or not all(
        isinstance(n, str) and _EXTRA_NAME.fullmatch(n) and not _RESERVED.fullmatch(n) for n in names
    ):
        raise DatasetError(f"meta.json 'extra_arrays' must list lowercase array names (got {names!r})")
    return list(names)


def array_names(tables: int, extra: list[str] | None = None) -> list[str]:
    """The array files of a dataset with ``tables`` tables (and the ``extra`` arrays)."""
    return ["dense.npy", *(f"sparse_{t:02d}.npy" for t in range(tables)), "labels.npy", *(f"{n}.npy" for n in extra or [])]


def read_meta(path: Path) -> dict[str, Any]:
    """``path/meta.json`` as a dict with an integer ``tables``.

    Raises:
        DatasetError: no meta.json (not a dataset), or one that is not a small JSON object.
    """
    meta_path = path / "meta.json"
    try:
        st = meta_path.stat()
    except OSError:
        raise DatasetError(f"{path} is not a recsuite dataset (no meta.json)") from None
    if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_META_BYTES:
        raise DatasetError(f"{path}: damaged dataset (meta.json is not a regular file of at most {MAX_META_BYTES} bytes)")
    try:
        meta = json.loads(meta_path.read_bytes())
        tables = meta["tables"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DatasetError(f"{path}: damaged dataset (meta.json: {type(exc).__name__}: {exc})") from None
    if not isinstance(tables, int) or isinstance(tables, bool) or not 0 <= tables <= 10_000:
        raise DatasetError(f"{path}: damaged dataset (meta.json 'tables' is {tables!r})")
    return dict(meta)


def check_arrays(path: Path, meta: Mapping[str, Any], *, checksums: bool = False) -> str | None:
    """The first problem of the arrays against ``meta['arrays']``, or None when they match.

    Always: each file exists, is regular, has the recorded size, and its header the recorded shape
    and dtype. With ``checksums``: its SHA-256 too. A dataset written before format 2 has no record;
    then only the headers are read.
    """
    try:
        names = array_names(int(meta["tables"]), extra_names(meta))
    except DatasetError as exc:
        return str(exc)
    record = meta.get("arrays")
    if record is not None and (
        not isinstance(record, dict) or sorted(record) != sorted(names) or not all(isinstance(v, dict) for v in record.values())
    ):
        return "meta.json 'arrays' does not list the dataset's files"
    for name in names:
        file = path / name
        try:
            st = file.stat()
        except OSError:
            return f"{name} is missing"
        if not stat.S_ISREG(st.st_mode):
            return f"{name} is not a regular file"
        want = record[name] if record is not None else None
        if want is not None and st.st_size != want.get("bytes"):
            return f"{name} holds {st.st_size} bytes, meta.json says {want.get('bytes')}"
        try:
            header = np.load(file, mmap_mode="r")
        except (OSError, ValueError, EOFError) as exc:
            return f"{name} is unreadable ({type(exc).__name__}: {exc})"
        if want is not None and (list(header.shape) != want.get("shape") or str(header.dtype) != want.get("dtype")):
            return (f"{name} is {header.dtype!s} {list(header.shape)}, "
                    f"meta.json says {want.get('dtype')} {want.get('shape')}")
        del header
        if checksums and want is not None and _sha256(file) != want.get("sha256"):
            return f"{name} does not match its sha256 in meta.json"
    return None


def verify(path: Path, *, checksums: bool = True) -> str | None:
    """The first problem of the dataset folder ``path`` (checksums included by default), or None."""
    try:
        meta = read_meta(path)
    except DatasetError as exc:
        return str(exc)
    if checksums and meta.get("arrays") is None:
        return UNCHECKED
    return check_arrays(path, meta, checksums=checksums)


def _sha256(file: Path) -> str:
    with file.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def save(path: Path, items: Batch, labels: np.ndarray, meta: Mapping[str, Any], *, replace: bool = False,
         extra: Mapping[str, np.ndarray] | None = None) -> Path:
    """Write a dataset folder atomically: built in a temporary folder, then renamed into place.

    ``extra``: per-item arrays kept beside the model inputs as ``<name>.npy`` (dlrm-v3's ``keys``).

    If ``path`` already holds a dataset, another writer got there first and theirs is kept; with
    ``replace`` (a damaged cache being rebuilt) the old folder is moved aside and removed.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        arrays = {"dense.npy": np.ascontiguousarray(items.dense, dtype=np.float32)}
        for t, ids in enumerate(items.sparse):
            arrays[f"sparse_{t:02d}.npy"] = np.ascontiguousarray(ids, dtype=np.int32)
        arrays["labels.npy"] = np.ascontiguousarray(labels, dtype=np.int8)
        extra = dict(extra or {})
        extra_names({"extra_arrays": sorted(extra)})
        for name, array in sorted(extra.items()):
            arrays[f"{name}.npy"] = np.ascontiguousarray(array)
        record = {}
        for name, array in arrays.items():
            np.save(tmp / name, array)
            record[name] = {
                "bytes": (tmp / name).stat().st_size,
                "shape": list(array.shape),
                "dtype": str(array.dtype),
                "sha256": _sha256(tmp / name),
            }
        full = {"format": FORMAT_VERSION, "items": len(items), "tables": len(items.sparse), **meta, "arrays": record}
        if extra:
            full["extra_arrays"] = sorted(extra)
        (tmp / "meta.json").write_text(json.dumps(full, indent=2, sort_keys=True) + "\n")
        if replace and path.exists():
            trash = Path(tempfile.mkdtemp(prefix=f".{path.name}.old.", dir=path.parent))
            path.rename(trash / path.name)
            shutil.rmtree(trash, ignore_errors=True)
        try:
            tmp.rename(path)
        except OSError:
            if not (path / "meta.json").is_file():
                raise DatasetError(f"{path} exists and is not a dataset; remove it") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return path


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path``'s cache entry (a ``.<name>.lock`` beside it), so two runs
    that need the same dataset build it once. A cache we may only read (a shared, read-only one)
    is used without the lock: nobody can build in it anyway."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        f = open(path.parent / f".{path.name}.lock", "a+b")
    except OSError:
        yield
        return
    with f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
