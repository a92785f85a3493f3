"""The Criteo click-log format, read and written for real.

A line is ``label \\t I1..I_D \\t C1..C_T``: the label, D integer features (counts; negative values
occur), T categorical features as 8-hex-digit hashes; an empty field is a missing value. Criteo's
own files have D = 13 and T = 26. Two documented extensions keep the format for other schemas:

* a categorical field holding a bag of several ids writes them comma-separated (``0a1b2c3d,00ff0012``);
* a multi-task label writes one 0/1 per task, comma-separated.

A multi-hot table (DLRM-v2's) keeps Criteo's one id per field in the file; the reader expands it to
the table's hotness as MLPerf's multi-hot Criteo does (:func:`layout_for`, ``suite.datasets.multihot``).

Reading follows dlrm's conventions: a missing integer is 0, negatives are clipped to 0 and the model
sees ``log1p``; a missing categorical id is 0; ids are hashed into a table with ``id % rows``
(dlrm's ``--max-ind-range``). Plain text and ``.gz`` (as the Terabyte days ship) are both read.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from suite.datasets.batch import Batch
from suite.errors import DatasetError
from suite.models.base import ModelSchema

INT_FEATURE_COUNT = 13
CAT_FEATURE_COUNT = 26


@dataclass(frozen=True, kw_only=True)
class Layout:
    """Column counts of a file: ``dense`` integer columns, one categorical column per entry of
    ``lookups`` (ids per field), and ``tasks`` labels."""

    dense: int = INT_FEATURE_COUNT
    lookups: tuple[int, ...] = (1,) * CAT_FEATURE_COUNT
    tasks: int = 1

    @property
    def columns(self) -> int:
        return 1 + self.dense + len(self.lookups)


CRITEO = Layout()


def layout_for(schema: ModelSchema) -> Layout:
    """The file layout of ``schema``'s data: one column per table, holding the ids the file
    carries (a single id for a multi-hot table, which the reader expands)."""
    return Layout(dense=schema.dense, lookups=schema.file_lookups, tasks=schema.tasks)


@dataclass(frozen=True)
class RawBlock:
    """Rows as the file holds them, before any transformation.

    Attributes:
        labels: (N, tasks) int8.
        dense: (N, D) int64, 0 where missing.
        dense_missing: (N, D) bool.
        cats: one (N, L_t) uint64 array of raw hashed ids per categorical column, 0 where missing.
        cat_missing: (N, T) bool.
    """

    labels: np.ndarray
    dense: np.ndarray
    dense_missing: np.ndarray
    cats: tuple[np.ndarray, ...]
    cat_missing: np.ndarray

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def to_batch(self, table_rows: Sequence[int], *, expand: Sequence[np.ndarray | None] | None = None) -> Batch:
        """Transform into model inputs: ``log1p(max(x, 0))`` and ``id % rows``; where ``expand``
        gives a (rows, k) table for a column, its single id becomes that table's row of k ids
        (MLPerf's multi-hot expansion, see ``suite.datasets.multihot``)."""
        dense = np.log1p(np.clip(self.dense, 0, None)).astype(np.float32)
        sparse = []
        for t, (c, rows) in enumerate(zip(self.cats, table_rows, strict=True)):
            ids = (c % np.uint64(rows)).astype(np.int32)
            table = expand[t] if expand is not None else None
            sparse.append(ids if table is None else table[ids[:, 0]])
        return Batch(dense=dense, sparse=tuple(sparse))


def open_text(path: Path) -> IO[str]:
    """Open a Criteo file for reading, plain or gzip-compressed (detected by magic bytes)."""
    try:
        with open(path, "rb") as probe:
            magic = probe.read(2)
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc.strerror}") from None
    if magic == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="ascii", newline="\n")
    return open(path, encoding="ascii", newline="\n")


def read(
    path: Path, layout: Layout = CRITEO, *, chunk_rows: int = 262_144, limit: int | None = None
) -> Iterator[RawBlock]:
    """Stream a Criteo file as blocks of at most ``chunk_rows`` rows.

    Raises:
        DatasetError: naming the file and line of the first malformed line (wrong field count,
            text in an integer column, a non-hex id, a bag of the wrong size).
    """
    with open_text(path) as handle:
        line_no = 0
        lines: list[str] = []
        try:
            for line in handle:
                lines.append(line)
                if limit is not None and line_no + len(lines) >= limit:
                    break
                if len(lines) == chunk_rows:
                    yield parse_lines(lines, layout, first_line=line_no + 1, source=str(path))
                    line_no += len(lines)
                    lines = []
        except (UnicodeDecodeError, EOFError, OSError, gzip.BadGzipFile) as exc:
            raise DatasetError(f"{path}: unreadable after line {line_no + len(lines)}: {exc}") from None
        if lines:
            yield parse_lines(lines, layout, first_line=line_no + 1, source=str(path))


def parse_lines(lines: Sequence[str], layout: Layout, *, first_line: int = 1, source: str = "<text>") -> RawBlock:
    """Parse Criteo lines (with or without their newline) into a :class:`RawBlock`."""
    ncol = layout.columns
    rows = [line.rstrip("\r\n").split("\t") for line in lines]
    for i, fields in enumerate(rows):
        if len(fields) != ncol:
            raise DatasetError(
                f"{source}:{first_line + i}: expected {ncol} tab-separated fields, found {len(fields)}"
            )
    n = len(rows)
    columns = list(zip(*rows, strict=False)) if rows else [()] * ncol

    labels = _labels(columns[0], layout.tasks, first_line, source)
    dense = np.zeros((n, layout.dense), dtype=np.int64)
    dense_missing = np.zeros((n, layout.dense), dtype=bool)
    for j in range(layout.dense):
        col = columns[1 + j]
        values, missing = _integers(col, first_line, source, f"I{j + 1}")
        dense[:, j] = values
        dense_missing[:, j] = missing
    cats = []
    cat_missing = np.zeros((n, len(layout.lookups)), dtype=bool)
    for t, lookups in enumerate(layout.lookups):
        col = columns[1 + layout.dense + t]
        ids, missing = _hex_ids(col, lookups, first_line, source, f"C{t + 1}")
        cats.append(ids)
        cat_missing[:, t] = missing
    return RawBlock(labels=labels, dense=dense, dense_missing=dense_missing, cats=tuple(cats), cat_missing=cat_missing)


def _labels(col: Sequence[str], tasks: int, first_line: int, source: str) -> np.ndarray:
    out = np.zeros((len(col), tasks), dtype=np.int8)
    for i, field in enumerate(col):
        parts = field.split(",") if tasks > 1 else (field,)
        if len(parts) != tasks or any(p not in ("0", "1") for p in parts):
            want = "0 or 1" if tasks == 1 else f"{tasks} comma-separated 0/1 labels"
            raise DatasetError(f"{source}:{first_line + i}: label must be {want} (got {field!r})")
        out[i] = [int(p) for p in parts]
    return out


def _integers(col: Sequence[str], first_line: int, source: str, name: str) -> tuple[np.ndarray, np.ndarray]:
    arr = np.asarray(col, dtype=object)
    missing = arr == ""
    filled = np.where(missing, "0", arr)
    try:
        return filled.astype(np.int64), missing
    except (ValueError, OverflowError):
        for i, field in enumerate(col):
            try:
                int(field or "0")
            except ValueError:
                raise DatasetError(
                    f"{source}:{first_line + i}: column {name} must be an integer (got {field!r})"
                ) from None
        raise


_HEX = frozenset("0123456789abcdefABCDEF")


def _hex_ids(
    col: Sequence[str], lookups: int, first_line: int, source: str, name: str
) -> tuple[np.ndarray, np.ndarray]:
    n = len(col)
    out = np.zeros((n, lookups), dtype=np.uint64)
    missing = np.zeros(n, dtype=bool)
    for i, field in enumerate(col):
        if not field:
            missing[i] = True
            continue
        parts = field.split(",") if lookups > 1 else (field,)
        if len(parts) != lookups:
            raise DatasetError(
                f"{source}:{first_line + i}: column {name} must hold {lookups} comma-separated ids "
                f"(found {len(parts)})"
            )
        for k, part in enumerate(parts):
            if not part or len(part) > 16 or not _HEX.issuperset(part):
                raise DatasetError(f"{source}:{first_line + i}: column {name} must be hex ids (got {part!r})")
            out[i, k] = int(part, 16)
    return out, missing


def format_lines(block: RawBlock) -> Iterator[str]:
    """Render a block as Criteo lines (with newline), the exact inverse of :func:`parse_lines`."""
    n = len(block)
    dense = block.dense.tolist()
    dmiss = block.dense_missing.tolist()
    labels = [",".join(str(v) for v in row) for row in block.labels.tolist()]
    cat_fields: list[list[str]] = []
    for t, ids in enumerate(block.cats):
        miss = block.cat_missing[:, t].tolist()
        rows = ids.tolist()
        cat_fields.append(["" if m else ",".join(f"{v:08x}" for v in r) for r, m in zip(rows, miss, strict=False)])
    for i in range(n):
        ints = ["" if m else str(v) for v, m in zip(dense[i], dmiss[i], strict=False)]
        cats = [col[i] for col in cat_fields]
        yield "\t".join([labels[i], *ints, *cats]) + "\n"


def write(path: Path, blocks: Sequence[RawBlock] | Iterator[RawBlock]) -> int:
    """Write blocks as a Criteo TSV (gzip when ``path`` ends in ``.gz``); returns the row count."""
    opener = gzip.open if path.suffix == ".gz" else open
    count = 0
    with opener(path, "wt", encoding="ascii", newline="\n") as handle:  # type: ignore[operator]  # gzip.open and open differ in signature; both take these arguments
        for block in blocks:
            handle.writelines(format_lines(block))
            count += len(block)
    return count
