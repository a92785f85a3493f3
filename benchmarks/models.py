"""Model zoo throughput and where the time goes: items/s of every model on torch-cpu at batch 1,
64 and 1024, and the torch-profiler share of a forward pass spent in embeddings, MLPs (fully
connected and DCN cross layers) and attention/RNN, to set beside DeepRecSys's operator breakdown
(RMC1/RMC2 embedding-dominated; RMC3, WnD, MT-WnD, NCF MLP-dominated; DIEN RNN-dominated).

Inputs are the synthetic generator's features (Zipf ids, interest-cluster sequences, multi-hot
expansion) without labels. Each model is built at ``--scale`` and timed through the backend's own
``predict`` (inference mode, sigmoid included) for ``--seconds`` per batch size.

    .venv/bin/python benchmarks/models.py [--scale small] [--threads 1] [--seconds 1.0] [--models a,b]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile, record_function

from suite.backends.base import BackendConfig
from suite.backends.torch_cpu import TorchCPUBackend
from suite.datasets import synthetic
from suite.datasets.batch import Batch
from suite.datasets.multihot import model_inputs
from suite.models import MODELS, ModelSpec

BATCHES = (1, 64, 1024)
PARTS = ("embedding", "mlp", "attention")


def items_per_s(backend: TorchCPUBackend, items: Batch, batch: int, seconds: float) -> float:
    starts = list(range(0, len(items) - batch + 1, batch))
    batches = [Batch(dense=items.dense[s:s + batch], sparse=tuple(x[s:s + batch] for x in items.sparse)) for s in starts]
    backend.predict(batches[0])
    done, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds or done < 3 * batch:
        for b in batches:
            backend.predict(b)
            done += len(b)
    return done / (time.perf_counter() - t0)


def _label_parts(model: torch.nn.Module) -> list[Any]:
    """Wrap each part the model declares in ``PARTS`` in a profiler range named ``part:<kind>``."""
    handles = []
    for attr, kind in type(model).PARTS.items():
        module = getattr(model, attr)
        targets = list(module) if isinstance(module, torch.nn.ModuleList) else [module]
        for target in targets:
            def enter(mod: torch.nn.Module, _args: Any, kind: str = kind) -> None:
                mod._bench_range = record_function(f"part:{kind}")
                mod._bench_range.__enter__()

            def leave(mod: torch.nn.Module, _args: Any, _out: Any) -> None:
                mod._bench_range.__exit__(None, None, None)

            handles += [target.register_forward_pre_hook(enter), target.register_forward_hook(leave)]
    return handles


def shares(backend: TorchCPUBackend, items: Batch, batch: int, reps: int) -> dict[str, float]:
    """Share of the forward pass's CPU time in each part (the rest: concatenation, sigmoid, glue)."""
    b = Batch(dense=items.dense[:batch], sparse=tuple(x[:batch] for x in items.sparse))
    model = backend._model
    handles = _label_parts(model)
    try:
        backend.predict(b)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(reps):
                with record_function("part:forward"):
                    backend.predict(b)
    finally:
        for h in handles:
            h.remove()
    totals = {e.key: e.cpu_time_total for e in prof.key_averages() if e.key.startswith("part:")}
    whole = totals.get("part:forward", 0.0) or 1.0
    return {p: totals.get(f"part:{p}", 0.0) / whole for p in PARTS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", default="small")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--models", default=",".join(MODELS))
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {args.threads} thread(s), scale {args.scale}")
    print("| model | items/s @1 | items/s @64 | items/s @1024 | emb / MLP / attn+RNN % @64 | emb / MLP / attn+RNN % @1024 |")
    print("|---|---:|---:|---:|---|---|")
    for name in args.models.split(","):
        spec = ModelSpec(name=name, scale=args.scale)
        raw = synthetic.features(spec.schema, 2048, np.random.default_rng(0))
        items = model_inputs(raw, spec.schema)
        backend = TorchCPUBackend(BackendConfig(model=spec, threads=args.threads))
        backend.load()
        rates = [items_per_s(backend, items, b, args.seconds) for b in BATCHES]
        split = [shares(backend, items, b, reps=max(2, 2048 // b // 4)) for b in (64, 1024)]
        backend.close()
        cells = [" / ".join(f"{100 * s[p]:.0f}" for p in PARTS) for s in split]
        print(f"| {name} | {rates[0]:,.0f} | {rates[1]:,.0f} | {rates[2]:,.0f} | {cells[0]} | {cells[1]} |", flush=True)


if __name__ == "__main__":
    main()
