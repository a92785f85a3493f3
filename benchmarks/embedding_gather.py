"""What DLRM-RMC1/RMC2's pooled lookups cost on one core, and what does not make them cheaper.

Ways to run all the tables of a batch, each timed per CPU-second over the same batches (cycled over
``--items`` generated items, so the rows a run touches are the rows measured):

* ``per-table``: one ``embedding_bag`` per table, as the model runs them (fp32, bf16: ``nn.EmbeddingBag``
  on the (N, L) ids; int8 through the backend's :class:`~suite.models.int8.ByteRowwiseBag`, offsets
  built once per shape);
* ``per-table flat``: fp32 again, the ids passed flat with prebuilt offsets;
* ``fused``: all tables concatenated into one table, each table's ids shifted by its row offset and
  interleaved item by item, one call for the whole batch (the output is already the (N, T x E)
  concatenation);
* ``int8 padded``: int8 rows padded to 64 bytes (one cache line each) where dim + 8 < 64.

Prints lookups/s and row bytes/s (bytes of the rows at the precision served) per way and batch size.

    .venv/bin/python benchmarks/embedding_gather.py [--models dlrm-rmc1,dlrm-rmc2] [--batches 512,2048] [--items 16384]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from cpu import generated

from suite.models import ModelSpec, build
from suite.models.int8 import ByteRowwiseBag


def rate(call: Callable[[list[torch.Tensor]], object], batches: list[list[torch.Tensor]], repeats: int = 3) -> float:
    """Batches per CPU-second, best of ``repeats`` passes over ``batches``."""
    call(batches[0])
    best = 0.0
    for _ in range(repeats):
        t = time.process_time()
        for ids in batches:
            call(ids)
        best = max(best, len(batches) / (time.process_time() - t))
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="dlrm-rmc1,dlrm-rmc2")
    ap.add_argument("--batches", default="512,2048")
    ap.add_argument("--items", type=int, default=16384)
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"# one thread, load average at start {os.getloadavg()}")
    for model in args.models.split(","):
        spec = ModelSpec(name=model, scale="small")
        items = generated(spec, args.items)
        bags = list(build(spec).embeddings)
        tables, dim, per_bag = len(bags), bags[0].embedding_dim, items.sparse[0].shape[1]
        rows = bags[0].weight.shape[0]
        bf16 = [torch.nn.EmbeddingBag.from_pretrained(b.weight.detach().bfloat16(), mode="sum") for b in bags]
        int8 = [ByteRowwiseBag(b) for b in bags]
        whole = torch.cat([b.weight.detach() for b in bags])
        packed = torch.cat([q.packed for q in int8])
        pad = 64 - (dim + 8) if dim + 8 < 64 else 0
        padded = torch.zeros(packed.shape[0], dim + pad + 8, dtype=torch.uint8)
        padded[:, :dim], padded[:, dim + pad:] = packed[:, :dim], packed[:, dim:]
        shift = (torch.arange(tables, dtype=torch.int32) * rows).view(1, tables, 1)

        def fused_ids(ids: list[torch.Tensor]) -> torch.Tensor:
            return (torch.stack(ids, 1) + shift).reshape(-1)

        for batch in [int(b) for b in args.batches.split(",")]:
            batches = [[torch.from_numpy(x[s:s + batch]) for x in items.sparse] for s in range(0, args.items - batch + 1, batch)]
            offsets = torch.arange(0, batch * tables * per_bag, per_bag, dtype=torch.int32)
            flat = offsets[:batch]
            ways: list[tuple[str, int, Callable[[list[torch.Tensor]], object]]] = [
                ("fp32 per-table", 4 * dim, lambda ids: [b(i) for b, i in zip(bags, ids, strict=True)]),
                ("fp32 per-table flat", 4 * dim, lambda ids: [F.embedding_bag(i.reshape(-1), b.weight, flat, mode="sum")
                                                              for b, i in zip(bags, ids, strict=True)]),
                ("fp32 fused", 4 * dim, lambda ids: F.embedding_bag(fused_ids(ids), whole, offsets, mode="sum")),
                ("bf16 per-table", 2 * dim, lambda ids: [b(i) for b, i in zip(bf16, ids, strict=True)]),
                ("int8 per-table", dim + 8, lambda ids: [b(i) for b, i in zip(int8, ids, strict=True)]),
                ("int8 fused", dim + 8, lambda ids: torch.ops.quantized.embedding_bag_byte_rowwise_offsets(
                    packed, fused_ids(ids), offsets, False, 0, False, None, None, False)),
            ]
            if pad:
                ways.append(("int8 fused, 64-byte rows", dim + 8, lambda ids: torch.ops.quantized.embedding_bag_byte_rowwise_offsets(
                    padded, fused_ids(ids), offsets, False, 0, False, None, None, False)))
            with torch.inference_mode():
                for name, row_bytes, call in ways:
                    lookups = rate(call, batches) * batch * tables * per_bag
                    print(f"{model} batch {batch:5d} {name:26s} {lookups / 1e6:7.1f} M lookups/s {lookups * row_bytes / 1e9:6.2f} GB/s"
                          f"  load {os.getloadavg()[0]:.1f}", flush=True)
    print(f"# load average at the end {os.getloadavg()}")


if __name__ == "__main__":
    main()
