"""One launch for every sum-pooled table of a model.

Every bag in the suite's DLRM models has a fixed size per table, so a batch's ids are a (N, L_t)
block per table; side by side they make one (N, sum L_t) matrix. The kernel's grid is (item
blocks, tables): a program reads ``BLOCK_N`` items x ``BLOCK_L`` ids of its table at a time, so
``BLOCK_N * BLOCK_L`` rows are in flight per program, sums them in fp32 and writes the pooled
vectors into the model's interaction matrix at the table's columns (the bottom MLP's output sits
in front), in the dense dtype.

Row formats (:data:`ROW_TYPES`), all tables in one buffer:

* ``bf16`` / ``fp16``: the rows as they are, ``dim`` elements.
* ``fp8``: e4m3 values of ``row / scale`` with ``scale = max|row| / 448``, then the fp32 scale:
  ``dim + 4`` bytes a row.
* ``int8``: ``round((row - bias) / scale)`` in [-127, 127] with ``bias = (max + min) / 2`` and
  ``scale = (max - min) / 254`` per row, then the fp32 scale and bias: ``dim + 8`` bytes a row.

The scale (and bias) sit at the end of their row, as FBGEMM's fused 8-bit rows do, so they arrive
with the row instead of as a second random access (``scales="inline"``); ``"apart"`` keeps them in
a second buffer so a row is ``dim`` aligned bytes; ``"table"`` has **one scale per table**: fp8
rows ``row / scale`` with ``scale = max|table| / 448``, int8 rows ``round(row / scale)`` in
[-127, 127] with ``scale = max|table| / 127`` (symmetric, no bias). A row is then ``dim`` aligned
bytes and nothing else, the kernel sums the raw values and multiplies each pooled vector once.
8-bit rows are bound by rows per second, not bytes (a 136-byte int8 row spans five or six 32-byte
sectors, and every row costs a scale and bias multiply-add), which is what ``"table"`` removes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import triton
import triton.language as tl

#: Row storage formats, by name; the value is the kernel's KIND.
ROW_TYPES = {"fp32": 0, "bf16": 0, "fp16": 0, "fp8": 1, "int8": 2}
#: Bytes after a row's values: the fp32 scale (fp8) or scale and bias (int8).
TRAILER_BYTES = {"fp32": 0, "bf16": 0, "fp16": 0, "fp8": 4, "int8": 8}
FP8_MAX = 448.0
#: Where 8-bit rows keep their scales (see the module's docstring).
SCALES = ("inline", "apart", "table")
#: (BLOCK_N items, BLOCK_L ids, warps) a program takes, by (row format, dim), where the caller names
#: none; ``benchmarks/gpu.py --sections kernels`` times the candidates and records its pick here.
#: The row format is the row type, with ``/table`` for 8-bit rows with one scale per table.
BLOCKS: dict[tuple[str, int], tuple[int, int, int]] = {}
#: The block where :data:`BLOCKS` has none, its items raised by :func:`default_block` where needed.
DEFAULT_BLOCK = (16, 4, 4)
#: Contiguous bytes of a row that one thread loads, as Triton's coalescing lays out a row load.
THREAD_BYTES = 16
#: Rows quantized at once when packing, to bound the temporary fp32 copy.
PACK_CHUNK_ROWS = 1 << 20


@triton.jit
def to_fp8(x, ROUND: tl.constexpr):
    """x (fp32, already within +-448) as fp8 e4m3. ``ROUND`` first rounds to e4m3's grid in fp32:
    Triton's CPU interpreter rounds wrongly where rounding carries into the exponent."""
    if ROUND:  # to nearest, ties to even, as the GPU's conversion does
        e = tl.maximum(tl.floor(tl.log2(tl.abs(x) + 1e-30)), -6.0)
        step = tl.exp2(e - 3.0)
        y = x / step
        r = tl.floor(y + 0.5)
        odd = (r - 2.0 * tl.floor(r * 0.5)) == 1.0
        x = tl.where(((r - y) == 0.5) & odd, r - 1.0, r) * step
    return x.to(tl.float8e4nv)


@triton.jit
def _pooled_kernel(ids_ptr, ids_stride, rows_ptr, aux_ptr, meta_ptr, out_ptr, out_stride, out_col0, n_items,
                   q_ptr, q_stride, q_inv,
                   D: tl.constexpr, ROW_STRIDE: tl.constexpr, AUX_STRIDE: tl.constexpr, AUX_OFF: tl.constexpr, KIND: tl.constexpr,
                   BLOCK_N: tl.constexpr, BLOCK_L: tl.constexpr, WRITE_OUT: tl.constexpr, WRITE_Q: tl.constexpr,
                   ROUND: tl.constexpr):
    pid = tl.program_id(0)
    t = tl.program_id(1)
    col = tl.load(meta_ptr + 3 * t)  # the table's first id column
    lookups = tl.load(meta_ptr + 3 * t + 1)
    base = tl.load(meta_ptr + 3 * t + 2)  # the table's first row in the packed buffer
    items = pid * BLOCK_N + tl.arange(0, BLOCK_N)
    item_ok = items < n_items
    ls = tl.arange(0, BLOCK_L)
    ds = tl.arange(0, D)
    id_row = ids_ptr + items.to(tl.int64)[:, None] * ids_stride + col
    acc = tl.zeros((BLOCK_N, D), dtype=tl.float32)
    for l0 in range(0, lookups, BLOCK_L):
        ok = item_ok[:, None] & ((l0 + ls) < lookups)[None, :]
        ids = tl.load(id_row + l0 + ls[None, :], mask=ok, other=0)
        rows = ids.to(tl.int64) + base
        vals = tl.load(rows_ptr + rows[:, :, None] * ROW_STRIDE + ds[None, None, :], mask=ok[:, :, None], other=0)
        if KIND == 0:
            acc += tl.sum(vals.to(tl.float32), axis=1)
        elif KIND == 1:
            scale = tl.load(aux_ptr + rows * AUX_STRIDE + AUX_OFF, mask=ok, other=0.0)
            acc += tl.sum(vals.to(tl.float8e4nv, bitcast=True).to(tl.float32) * scale[:, :, None], axis=1)
        elif KIND == 2:
            scale = tl.load(aux_ptr + rows * AUX_STRIDE + AUX_OFF, mask=ok, other=0.0)
            bias = tl.load(aux_ptr + rows * AUX_STRIDE + AUX_OFF + 1, mask=ok, other=0.0)
            acc += tl.sum(vals.to(tl.float32) * scale[:, :, None], axis=1) + tl.sum(bias, axis=1)[:, None]
        elif KIND == 3:  # fp8, one scale per table: applied once, after the sum
            acc += tl.sum(vals.to(tl.float8e4nv, bitcast=True).to(tl.float32), axis=1)
        else:  # int8, one scale per table
            acc += tl.sum(vals.to(tl.float32), axis=1)
    if KIND >= 3:
        acc = acc * tl.load(aux_ptr + t)
    if WRITE_OUT:
        out = out_ptr + items.to(tl.int64)[:, None] * out_stride + out_col0 + t * D + ds[None, :]
        tl.store(out, acc.to(out_ptr.dtype.element_ty), mask=item_ok[:, None])
    if WRITE_Q:  # the fp8 copy the first fp8 matmul reads, from the fp32 sums
        q = tl.minimum(tl.maximum(acc * q_inv, -448.0), 448.0)
        q_at = q_ptr + items.to(tl.int64)[:, None] * q_stride + out_col0 + t * D + ds[None, :]
        tl.store(q_at, to_fp8(q, ROUND), mask=item_ok[:, None])


@dataclass
class PackedTables:
    """Tables packed for :func:`pooled`: one row buffer, and per table (id column, lookups, first
    row) in ``meta`` on the device.

    Attributes:
        rows: (total rows, dim) for bf16/fp16/fp32; (total rows, row bytes) uint8 for fp8/int8.
        meta: (tables, 3) int64 on the rows' device.
        dim: embedding width (a multiple of 4, at most a power of two for Triton's tiles).
        row_type: a key of :data:`ROW_TYPES`.
        lookups: ids per item of each table, in order.
        scales: for fp8/int8 packed with ``scales="apart"``: the (total rows, 1 or 2) fp32 scales
            (and biases) apart from ``rows``, which then holds the ``dim`` values alone, so a row
            is 128 aligned bytes and its scale a second, small read.
        table_scales: for fp8/int8 packed with ``scales="table"``: (tables,) fp32, one scale per
            table; ``rows`` holds the ``dim`` values alone.
    """

    rows: torch.Tensor
    meta: torch.Tensor
    dim: int
    row_type: str
    lookups: tuple[int, ...]
    scales: torch.Tensor | None = None
    table_scales: torch.Tensor | None = None

    @property
    def scale_layout(self) -> str:
        """Where 8-bit rows keep their scales: one of :data:`SCALES` (``inline`` for 16-bit rows)."""
        return "table" if self.table_scales is not None else "apart" if self.scales is not None else "inline"

    @property
    def kind(self) -> int:
        """The kernel's KIND: 0 16/32-bit, 1 fp8 and 2 int8 with per-row scales, 3 fp8 and 4 int8
        with one scale per table."""
        base = ROW_TYPES[self.row_type]
        return base + 2 if self.table_scales is not None and base else base

    @property
    def id_columns(self) -> int:
        return sum(self.lookups)

    @property
    def row_bytes(self) -> int:
        """Bytes one stored row takes, its scale (and bias) included."""
        apart = 0 if self.scales is None else self.scales.shape[1] * 4
        return int(self.rows.shape[1] * self.rows.element_size()) + apart

    def stored(self, index: torch.Tensor) -> torch.Tensor:
        """Rows ``index`` in the interleaved format of :func:`quantize_rows`, whatever the layout
        (with ``scales="table"``: the values alone)."""
        if self.scales is None:
            return self.rows[index]
        return torch.cat([self.rows[index], self.scales[index].view(torch.uint8)], dim=1)

    def dequantized(self, table: int, index: torch.Tensor) -> torch.Tensor:
        """Rows ``index`` (absolute, in the packed buffer) of ``table`` in fp32: what the kernel sums."""
        if self.table_scales is None:
            return dequantize_rows(self.stored(index), self.row_type, self.dim)
        values = self.rows[index].view(torch.float8_e4m3fn if self.row_type == "fp8" else torch.int8)
        return values.float() * self.table_scales[table]

    def _views(self) -> tuple[torch.Tensor, torch.Tensor, int, int, int]:
        """(values view, float32 view holding the scales, values per row, floats per row, offset
        of a row's scale in floats)."""
        if self.row_type in ("fp32", "bf16", "fp16"):
            return self.rows, self.rows, self.rows.shape[1], 0, 0
        # fp8 rows are read as bytes and bitcast in the kernel: a masked load needs a zero of its type.
        values = self.rows if self.row_type == "fp8" else self.rows.view(torch.int8)
        if self.table_scales is not None:
            return values, self.table_scales, self.rows.shape[1], 0, 0
        if self.scales is not None:
            return values, self.scales, self.rows.shape[1], self.scales.shape[1], 0
        return values, self.rows.view(torch.float32), self.rows.shape[1], self.rows.shape[1] // 4, self.dim // 4


def quantize_rows(weight: torch.Tensor, row_type: str) -> torch.Tensor:
    """``weight`` (rows, dim) in the stored format of ``row_type`` (see the module's docstring)."""
    if row_type not in ROW_TYPES:
        raise ValueError(f"'row_type' must be one of {sorted(ROW_TYPES)} (got {row_type!r})")
    rows, dim = weight.shape
    if row_type in ("fp32", "bf16", "fp16"):
        return weight.to({"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[row_type]).contiguous()
    out = torch.empty((rows, dim + TRAILER_BYTES[row_type]), dtype=torch.uint8, device=weight.device)
    for start in range(0, rows, PACK_CHUNK_ROWS):
        w = weight[start:start + PACK_CHUNK_ROWS].float()
        block = out[start:start + PACK_CHUNK_ROWS]
        trailer = block[:, dim:].view(torch.float32)
        if row_type == "fp8":
            scale = (w.abs().amax(dim=1) / FP8_MAX).clamp_min(1e-30)
            block[:, :dim].view(torch.float8_e4m3fn).copy_((w / scale[:, None]).clamp(-FP8_MAX, FP8_MAX))
            trailer[:, 0] = scale
        else:
            hi, lo = w.amax(dim=1), w.amin(dim=1)
            scale = ((hi - lo) / 254.0).clamp_min(1e-30)
            bias = (hi + lo) / 2
            block[:, :dim].view(torch.int8).copy_(torch.round((w - bias[:, None]) / scale[:, None]).clamp(-127, 127))
            trailer[:, 0] = scale
            trailer[:, 1] = bias
    return out


def dequantize_rows(stored: torch.Tensor, row_type: str, dim: int) -> torch.Tensor:
    """The fp32 rows a stored buffer stands for: what :func:`pooled` sums."""
    if row_type in ("fp32", "bf16", "fp16"):
        return stored.float()
    trailer = stored[:, dim:].contiguous().view(torch.float32)
    if row_type == "fp8":
        return stored[:, :dim].contiguous().view(torch.float8_e4m3fn).float() * trailer[:, :1]
    return stored[:, :dim].contiguous().view(torch.int8).float() * trailer[:, :1] + trailer[:, 1:2]


def pack(weights: Sequence[torch.Tensor], lookups: Sequence[int], row_type: str, *, release: bool = False,
         scales: str = "inline") -> PackedTables:
    """Quantize and concatenate ``weights`` (one (rows, dim) tensor per table, on one device) for
    :func:`pooled`. With ``release``, each source tensor's storage is freed once it is packed, so
    a full-scale model never holds both copies of more than one table. ``scales`` says where an
    8-bit format keeps its scales (:data:`SCALES`, the module's docstring); 16-bit rows have none."""
    if scales not in SCALES:
        raise ValueError(f"'scales' must be one of {list(SCALES)} (got {scales!r})")
    dims = {w.shape[1] for w in weights}
    if len(dims) != 1:
        raise ValueError(f"tables must share one dim (got {sorted(dims)})")
    dim = dims.pop()
    if dim % 4 or dim & (dim - 1):
        raise ValueError(f"'dim' must be a power of two and a multiple of 4 (got {dim})")
    if len(weights) != len(lookups):
        raise ValueError("one lookups count per table")
    total = sum(w.shape[0] for w in weights)
    device = weights[0].device
    trailer = TRAILER_BYTES[row_type]
    per_table = scales == "table" and trailer > 0
    split = scales == "apart" and trailer > 0
    width = dim if split or per_table else dim + trailer
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}.get(row_type, torch.uint8)
    rows = torch.empty((total, width), dtype=dtype, device=device)
    apart = torch.empty((total, trailer // 4), dtype=torch.float32, device=device) if split else None
    table_scales = torch.empty(len(weights), dtype=torch.float32, device=device) if per_table else None
    meta = []
    start, col = 0, 0
    for t, (w, lk) in enumerate(zip(weights, lookups, strict=False)):
        n = w.shape[0]
        if table_scales is not None:
            amax = max((float(w[s:s + PACK_CHUNK_ROWS].abs().amax()) for s in range(0, n, PACK_CHUNK_ROWS)), default=0.0)
            table_scales[t] = max(amax, 1e-30) / (FP8_MAX if row_type == "fp8" else 127.0)
        for s in range(0, n, PACK_CHUNK_ROWS):
            at = slice(start + s, start + min(n, s + PACK_CHUNK_ROWS))
            if table_scales is not None:
                v = w[s:s + PACK_CHUNK_ROWS].float() / table_scales[t]
                if row_type == "fp8":
                    rows[at].view(torch.float8_e4m3fn).copy_(v.clamp(-FP8_MAX, FP8_MAX))
                else:
                    rows[at].view(torch.int8).copy_(torch.round(v).clamp(-127, 127))
                continue
            block = quantize_rows(w[s:s + PACK_CHUNK_ROWS], row_type)
            if apart is not None:
                rows[at] = block[:, :dim]
                apart[at] = block[:, dim:].contiguous().view(torch.float32)
            else:
                rows[at] = block
        meta.append((col, lk, start))
        if release:
            w.data = torch.empty(0, dtype=w.dtype, device=w.device)
        start += n
        col += lk
    return PackedTables(rows=rows, meta=torch.tensor(meta, dtype=torch.int64, device=device), dim=dim,
                        row_type=row_type, lookups=tuple(int(x) for x in lookups), scales=apart, table_scales=table_scales)


def interpreted() -> bool:
    """True when Triton runs its CPU interpreter (``TRITON_INTERPRET=1``) instead of compiling."""
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def default_block(tables: PackedTables) -> tuple[int, int, int]:
    """The (BLOCK_N, BLOCK_L, warps) :func:`pooled` launches with where neither the caller nor
    :data:`BLOCKS` names one, chosen so that the loop over ids has no barrier.

    Triton lays the (BLOCK_N, BLOCK_L, dim) row load out with up to :data:`THREAD_BYTES` of a row a
    thread (less where the row stride is less aligned), a row's threads side by side and a warp's
    other threads on further items; warps go to items first and to ids only once the items run out.
    Two things then put a shared-memory round and a barrier into every step, compiled for sm_90 with
    Triton 3.6:

    * warps on ids: the sum over ids crosses warps. This held RMC1's 64-byte bf16 rows to 19% of
      the H200's copy rate at 16 x 4 items x ids (two of four warps on ids) while its 128-byte fp32
      rows reached 87%.
    * as many ids a step as the block has threads: the ids' load is laid out for itself and then
      moved into the rows' layout.

    So a block takes enough items to fill every warp (``items_a_warp * warps``), and two ids a step
    where a warp holds more than four items; ``tests/test_kernels_compile.py`` compiles every row
    format at the zoo's widths and checks that no barrier is left in the loop."""
    block_n, block_l, warps = DEFAULT_BLOCK
    values, _, row_stride, _, _ = tables._views()
    size = values.element_size()
    aligned = row_stride * size & -(row_stride * size)  # the largest power of two dividing the stride in bytes
    per_thread = max(1, min(THREAD_BYTES, aligned) // size)
    items_a_warp = 32 // min(32, max(1, tables.dim // per_thread))
    return max(block_n, items_a_warp * warps), block_l if items_a_warp <= 4 else 2, warps


def pooled(tables: PackedTables, ids: torch.Tensor, out: torch.Tensor | None = None, col0: int = 0, *,
           block_n: int | None = None, block_l: int | None = None, num_warps: int | None = None,
           out_dtype: torch.dtype = torch.bfloat16, q_out: torch.Tensor | None = None, q_scale: float = 1.0,
           write_out: bool = True) -> torch.Tensor | None:
    """Sum-pool every table in one launch.

    ``ids`` is (N, sum of lookups) int32 or int64, the tables' ids side by side in table order.
    The pooled vector of table t lands in ``out[:, col0 + t*dim : col0 + (t+1)*dim]``; ``out``
    (N, >= col0 + tables*dim, unit column stride) is made when not given. ``q_out`` (fp8 e4m3,
    shaped as ``out``) also gets ``sum / q_scale`` at the same columns, saturated: the fp8 input
    of an fp8 matmul, without a second pass over ``out``; with ``write_out=False`` only ``q_out``
    is written (and None returned).
    """
    if not write_out and q_out is None:
        raise ValueError("write_out=False needs q_out")
    n = ids.shape[0]
    if ids.dim() != 2 or ids.shape[1] != tables.id_columns:
        raise ValueError(f"ids must be (N, {tables.id_columns}) (got {tuple(ids.shape)})")
    if ids.stride(1) != 1:
        ids = ids.contiguous()
    t = len(tables.lookups)
    if not write_out:
        out = q_out
    if out is None:
        out = torch.empty((n, col0 + t * tables.dim), dtype=out_dtype, device=ids.device)
    if out.stride(1) != 1 or out.shape[1] < col0 + t * tables.dim or out.shape[0] < n:
        raise ValueError(f"out must be (N, >= {col0 + t * tables.dim}) with unit column stride")
    if n == 0:
        return out if write_out else None
    row_format = tables.row_type if tables.kind < 3 else f"{tables.row_type}/table"
    default = BLOCKS.get((row_format, tables.dim)) or default_block(tables)
    block_n, block_l, num_warps = block_n or default[0], block_l or default[1], num_warps or default[2]
    values, aux, row_stride, aux_stride, aux_off = tables._views()
    grid = (triton.cdiv(n, block_n), t)
    if q_out is not None and (q_out.dtype != torch.float8_e4m3fn or q_out.stride(1) != 1 or q_out.shape[0] < n
                              or q_out.shape[1] < col0 + t * tables.dim):
        raise ValueError(f"q_out must be fp8 e4m3, (N, >= {col0 + t * tables.dim}) with unit column stride")
    _pooled_kernel[grid](ids, ids.stride(0), values, aux, tables.meta, out, out.stride(0), col0, n,
                         q_out if q_out is not None else out, q_out.stride(0) if q_out is not None else 0, 1.0 / q_scale,
                         WRITE_OUT=write_out, WRITE_Q=q_out is not None, ROUND=interpreted(), D=tables.dim, ROW_STRIDE=row_stride, AUX_STRIDE=aux_stride, AUX_OFF=aux_off, KIND=tables.kind,
                         BLOCK_N=block_n, BLOCK_L=block_l, num_warps=num_warps)
    return out if write_out else None


def pooled_reference(tables: PackedTables, ids: torch.Tensor) -> torch.Tensor:
    """What :func:`pooled` computes, in fp32 with torch ops: the rows ``ids`` name, dequantized
    (only those, so a full-scale check needs no fp32 copy of the tables) and summed per bag."""
    outs = []
    for t, (col, lk, base) in enumerate(tables.meta.tolist()):
        rows = ids[:, col:col + lk].long() + base
        outs.append(tables.dequantized(t, rows.reshape(-1)).reshape(rows.shape[0], lk, tables.dim).sum(dim=1))
    return torch.cat(outs, dim=1)
