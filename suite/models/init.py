"""Seeded weights that are a pure function of (seed, parameter, element), made chunk by chunk.

A model is constructed on torch's ``meta`` device (no memory), recording each parameter's
distribution in an :class:`Init`; :func:`materialize` then allocates every parameter in the serving
dtype on the target device and fills it block by block. Block ``k`` of parameter ``name`` (elements
``k * BLOCK_ELEMENTS`` onwards of the flattened tensor) comes from a CPU ``torch.Generator`` seeded
with a hash of ``(seed, name, k)``, so:

* a value depends on nothing but (seed, parameter name, element index): not on the device, the
  dtype it ends in (rounding aside), how many blocks are filled at once or in which order, or the
  other parameters (a table capped at fewer rows is a prefix of the larger one);
* no full fp32 copy of a model ever sits in host memory: a DLRM-v2 at full scale (26 G embedding
  values) is filled through per-thread buffers of one block, in parallel over the host's cores.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

#: Elements drawn from one generator stream (4 MiB of fp32): the unit of chunk independence.
BLOCK_ELEMENTS = 1 << 20
#: Blocks filled by one task: several blocks per host-to-device copy when filling a GPU.
CHUNK_BLOCKS = 8


@dataclass(frozen=True)
class Draw:
    """A parameter's distribution: ``normal`` (std ``scale``) or ``uniform`` (on +-``scale``)."""

    kind: str
    scale: float


class Init:
    """Records how each parameter of a model under construction is to be drawn.

    Model constructors call :func:`suite.models.layers.normal_` and ``uniform_`` with an ``Init``
    in place of a generator; nothing is drawn until :func:`materialize`.
    """

    def __init__(self) -> None:
        self.draws: dict[int, tuple[torch.Tensor, Draw]] = {}

    def normal(self, tensor: torch.Tensor, std: float) -> None:
        self.draws[id(tensor)] = (tensor, Draw("normal", float(std)))

    def uniform(self, tensor: torch.Tensor, bound: float) -> None:
        self.draws[id(tensor)] = (tensor, Draw("uniform", float(bound)))


#: In-place random fills a module constructor may call on its parameters (directly, or through
#: ``torch.nn.init``): on the meta device they are skipped (see :func:`on_meta`).
_RANDOM_FILLS = frozenset(
    getattr(torch.Tensor, name)
    for name in ("normal_", "uniform_", "bernoulli_", "random_", "exponential_", "geometric_", "log_normal_", "cauchy_")
)


class _SkipMetaFills(TorchFunctionMode):
    """Leaves meta tensors as they are where a constructor would draw them at random."""

    def __torch_function__(
        self, func: Callable[..., Any], types: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None,
    ) -> Any:
        target = args[0] if args else (kwargs or {}).get("tensor")
        if isinstance(target, torch.Tensor) and target.is_meta and (
            func in _RANDOM_FILLS or (getattr(func, "__module__", None) == "torch.nn.init" and func.__name__.endswith("_"))
        ):
            return target
        return func(*args, **(kwargs or {}))


@contextlib.contextmanager
def on_meta() -> Iterator[None]:
    """Construct modules on torch's ``meta`` device, their constructors' own random
    initialisation skipped (a meta tensor holds no values; :func:`materialize` draws them all).

    Running it would cost nothing but time: torch's meta kernels for the random fills are Python
    decompositions, and the first one a process calls imports them all (some 2 s of every run).
    """
    with torch.device("meta"), _SkipMetaFills():
        yield


def block_seed(seed: int, name: str, block: int) -> int:
    """The generator seed of block ``block`` of parameter ``name`` under model seed ``seed``."""
    digest = hashlib.blake2b(f"{seed}/{name}/{block}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


def draw_block(draw: Draw, seed: int, name: str, block: int, out: torch.Tensor) -> None:
    """Fill the fp32 CPU tensor ``out`` (at most one block long) with block ``block``'s values."""
    generator = torch.Generator().manual_seed(block_seed(seed, name, block))
    if draw.kind == "normal":
        out.normal_(0.0, draw.scale, generator=generator)
    else:
        out.uniform_(-draw.scale, draw.scale, generator=generator)


def fill_(
    tensor: torch.Tensor, draw: Draw, seed: int, name: str, *, chunk_blocks: int = CHUNK_BLOCKS,
    threads: int = 0,
) -> None:
    """Fill ``tensor`` (any device, any float dtype, contiguous) with parameter ``name``'s values.

    Work goes in chunks of ``chunk_blocks`` blocks, over ``threads`` host threads (0: one per core);
    the values do not depend on either.
    """
    flat = tensor.detach().view(-1)
    total = flat.numel()
    span = chunk_blocks * BLOCK_ELEMENTS
    chunks = range(0, total, span)
    local = threading.local()
    pin = flat.device.type == "cuda"

    def work(start: int) -> None:
        end = min(start + span, total)
        buf: torch.Tensor | None = getattr(local, "buf", None)
        if buf is None:
            buf = torch.empty(span, dtype=torch.float32, pin_memory=pin)
            local.buf = buf
        for first in range(start, end, BLOCK_ELEMENTS):
            last = min(first + BLOCK_ELEMENTS, end)
            draw_block(draw, seed, name, first // BLOCK_ELEMENTS, buf[first - start : last - start])
        flat[start:end].copy_(buf[: end - start])  # a synchronous copy: buf is reused next

    workers = min(len(chunks), threads or len(os.sched_getaffinity(0)))
    if workers <= 1:
        for start in chunks:
            work(start)
        return

    def run(start: int) -> None:
        # A pool thread's CUDA calls go to the tensor's device, not to the default one.
        with torch.cuda.device(flat.device) if pin else contextlib.nullcontext():
            work(start)

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(run, chunks))


def draw_rows(draw: Draw, seed: int, name: str, rows: torch.Tensor, shape: tuple[int, int], *,
              threads: int = 0) -> torch.Tensor:
    """Rows ``rows`` (int64, any order) of the 2-D parameter ``name`` of ``shape``, as :func:`fill_`
    makes them in the whole parameter: a (len(rows), shape[1]) fp32 CPU tensor.

    Only the blocks holding those rows are drawn, and only the rows are kept, so a model can hold
    the rows a dataset uses of a table that would not fit anywhere whole.
    """
    width = shape[1]
    total = shape[0] * width
    out = torch.empty((len(rows), width), dtype=torch.float32)
    if not len(rows):
        return out
    first = rows.long() * width  # each row's first element in the flattened parameter
    order = torch.argsort(first)
    starts = first[order]
    ends = starts + width
    blocks = torch.unique(torch.cat([first // BLOCK_ELEMENTS, (first + width - 1) // BLOCK_ELEMENTS]))
    columns = torch.arange(width)
    local = threading.local()

    def work(block: int) -> None:
        buf: torch.Tensor | None = getattr(local, "buf", None)
        if buf is None:
            buf = local.buf = torch.empty(BLOCK_ELEMENTS, dtype=torch.float32)
        lo = block * BLOCK_ELEMENTS
        hi = min(lo + BLOCK_ELEMENTS, total)
        # The last block is drawn as long as the parameter has it: a stream's values depend on its length.
        draw_block(draw, seed, name, block, buf[: hi - lo])
        # The rows overlapping [lo, hi), found in the sorted starts; whole ones gathered at once.
        a = int(torch.searchsorted(ends, lo, right=True))
        b = int(torch.searchsorted(starts, hi))
        at, start = order[a:b], starts[a:b]
        whole = (start >= lo) & (start + width <= hi)
        out[at[whole]] = buf[(start[whole] - lo)[:, None] + columns]
        for i, s0 in zip(at[~whole].tolist(), start[~whole].tolist(), strict=True):  # a row across two blocks
            x, y = max(s0, lo), min(s0 + width, hi)
            out[i, x - s0 : y - s0] = buf[x - lo : y - lo]

    workers = min(len(blocks), threads or len(os.sched_getaffinity(0)))
    with ThreadPoolExecutor(max(1, workers)) as pool:
        list(pool.map(work, blocks.tolist()))
    return out


def materialize(
    model: nn.Module, init: Init, seed: int, *, device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32, threads: int = 0, rows: dict[str, tuple[torch.Tensor, int]] | None = None,
) -> nn.Module:
    """Allocate the ``meta`` model's parameters on ``device`` in ``dtype`` and draw them (those whose
    names start with one of the model's ``KEEP_FP32`` prefixes in fp32 when ``dtype`` is 16-bit).

    ``rows``: parameters (by name) that hold only some rows of the seeded whole, as (those rows, the
    whole's row count) (:func:`draw_rows`; the parameter's first dimension is the rows' count).

    Every parameter must have been recorded in ``init``; one that was not is a bug in the model.
    """
    names = {id(p): name for name, p in model.named_parameters()}
    draws: dict[str, Draw] = {}
    for key, (tensor, draw) in init.draws.items():
        if key not in names:
            raise AssertionError(f"an initialised tensor of shape {tuple(tensor.shape)} is not a parameter of the model")
        draws[names[key]] = draw
    missing = sorted(set(names.values()) - set(draws))
    if missing:
        raise AssertionError(f"parameters without an initialisation: {missing}")
    model = model.to(dtype=dtype)
    if dtype.itemsize < 4:
        # A model may name parameters that stay fp32 in a 16-bit build (``KEEP_FP32``, prefixes of
        # parameter names): parts whose rounding would bias every score (see dlrm-v3's head).
        keep = tuple(getattr(model, "KEEP_FP32", ()))
        for name, param in model.named_parameters():
            if keep and name.startswith(keep):
                param.data = param.data.float()
    # ``model.to_empty(device=device)``, through torch.empty: empty_like on a meta tensor is a
    # Python reference whose first call imports sympy (most of a second of every model build).
    made: dict[int, nn.Parameter] = {}
    for module in model.modules():
        for attr, meta in list(module.named_parameters(recurse=False)):
            if id(meta) not in made:
                made[id(meta)] = nn.Parameter(torch.empty(meta.shape, dtype=meta.dtype, device=device), meta.requires_grad)
            setattr(module, attr, made[id(meta)])
    for name, param in model.named_parameters():
        if rows and name in rows:
            ids, whole_rows = rows[name]
            param.data.copy_(draw_rows(draws[name], seed, name, ids, (whole_rows, param.shape[1]), threads=threads))
        else:
            fill_(param, draws[name], seed, name, threads=threads)
    buffers = [name for name, _ in model.named_buffers()]
    if buffers:
        raise AssertionError(f"buffers {buffers} would be left uninitialised")
    return model
