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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import torch
from torch import nn

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


def materialize(
    model: nn.Module, init: Init, seed: int, *, device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32, threads: int = 0,
) -> nn.Module:
    """Allocate the ``meta`` model's parameters on ``device`` in ``dtype`` and draw them (those whose
    names start with one of the model's ``KEEP_FP32`` prefixes in fp32 when ``dtype`` is 16-bit).

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
    model = model.to_empty(device=device)
    for name, param in model.named_parameters():
        fill_(param, draws[name], seed, name, threads=threads)
    buffers = [name for name, _ in model.named_buffers()]
    if buffers:
        raise AssertionError(f"buffers {buffers} would be left uninitialised")
    return model
