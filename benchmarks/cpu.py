"""The CPU path at hardware speed: every model at fp32, bf16 and int8 on one core, against this
machine's measured memory bandwidth and GEMM rates, with the accuracy gate of each precision.

Per model and (backend, precision): items per second of ``predict`` on one thread, back to back on
batches of generated items (the backend's speed, without LoadGen; ``benchmarks/backends_cpu.py``
and the CLI measure the same through LoadGen); samples/s per core for dlrm-v2 (MLPerf's sample: 270
items on average); embedding bytes/s (the rows gathered per item, counted at the serving
precision's row size, times items/s) for the whole model and, for the DLRM models, for the pooled
lookups alone; dense GFLOP/s (the model's dense FLOPs per item times items/s, as if all the time went
to the dense layers) against a one-core GEMM of the same arithmetic; the ratio to fp32; and the AUC
as a share of the reference AUC on the model's tiny generated dataset (the gate: >= 99%, and whether
>= 99.9%). Quantization error is per row and per layer, so the tiny tables gate what the small ones run.

Per core means per CPU-second: every rate (the models' and the bandwidth and GEMM references) is
work over the process's CPU time (``time.process_time``, one thread), so on a box shared with other
jobs a time slice lost to them is not counted as this core being slow. Wall-clock items/s are shown
beside it. Caches and memory are still shared, so the load average is printed with every row.

Memory bandwidth, three figures of one core: a streaming copy (read + write counted), a streaming
read (a sum), and a random gather (``embedding_bag`` over uniform ids into a 1 GiB fp32 table of
128-byte rows, far beyond the L3). The percentages are of the streaming copy.

The items cycled over are ``--items`` (16,384 by default: the working set of a run's dataset, not a
handful of batches whose rows stay in cache).

    .venv/bin/python benchmarks/cpu.py [--models all] [--scale small] [--seconds 2] [--batch 512] [--ort-models ...]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from suite.backends import BackendConfig, get_backend
from suite.backends.base import Backend
from suite.datasets import synthetic
from suite.datasets.batch import Batch
from suite.datasets.multihot import model_inputs
from suite.datasets.store import Dataset
from suite.metrics import auc
from suite.models import MODELS, ModelSpec, default_rows, parse_scale

SAMPLE_ITEMS = 270  # MLPerf DLRM-v2's mean items per sample (dist_quantile.txt)
#: (label, backend, precision, options) measured for every model; onnxruntime's only for --ort-models.
COMBOS = [
    ("torch fp32", "torch-cpu", "fp32", ()),
    ("torch bf16", "torch-cpu", "bf16", ()),
    ("torch int8", "torch-cpu", "int8", ()),
    ("torch int8 rows+bf16 dense", "torch-cpu", "int8", (("dense", "bf16"),)),
    ("torch int8 dense+fp32 rows", "torch-cpu", "int8", (("rows", "fp32"),)),
    ("ort fp32", "onnxruntime", "fp32", ()),
    ("ort int8", "onnxruntime", "int8", ()),
    ("ort int8 qdq", "onnxruntime", "int8", (("quantization", "qdq"),)),
]
#: Models measured by ``--models all``: dlrm-v3 reads jagged requests, not the generated items this
#: script feeds (its CPU numbers are docs/dlrm-v3.md's).
SKIPPED = {"dlrm-v3": "jagged requests: measured by docs/dlrm-v3.md's benchmarks"}
#: Bytes an int8 table row takes beyond its dim: torch's fp32 scale and bias (ORT's scale is per table).
ROW_EXTRA = {"torch-cpu": 8, "onnxruntime": 0}
GEMM = 1024


def best_rate(call: Callable[[], object], work: float, repeats: int = 5) -> float:
    """``work`` per CPU-second of the fastest of ``repeats`` calls of ``call`` (after one warm-up)."""
    call()
    best = 0.0
    for _ in range(repeats):
        t = time.process_time()
        call()
        best = max(best, work / max(time.process_time() - t, 1e-9))
    return best


def bandwidths() -> dict[str, float]:
    """Bytes per CPU-second of one core: a streaming copy of 256 MiB (read + write counted), a
    streaming read of 256 MiB (a sum), and a random gather of 128-byte rows (fp32, dim 32) at uniform
    ids from a 1 GiB table, pooled 80 to a bag as DLRM-RMC1 pools (``embedding_bag``)."""
    torch.set_num_threads(1)
    src = np.ones(32 * 2**20, dtype=np.float64)
    dst = np.empty_like(src)
    read = torch.ones(64 * 2**20)
    table = torch.randn(2**23, 32)
    ids = torch.randint(0, 2**23, (2**20,), dtype=torch.int32, generator=torch.Generator().manual_seed(0))
    offsets = torch.arange(0, ids.numel(), 80, dtype=torch.int32)
    with torch.inference_mode():
        return {
            "copy": best_rate(lambda: np.copyto(dst, src), 2 * src.nbytes),
            "read": best_rate(lambda: read.sum(), 4 * read.numel()),
            "gather": best_rate(lambda: torch.nn.functional.embedding_bag(ids, table, offsets, mode="sum"), 128 * ids.numel()),
        }


def gemm_rates() -> dict[str, float]:
    """FLOP/s of a one-thread 1024-cube GEMM per arithmetic (int8: the backend's Int8Linear)."""
    from suite.models.int8 import Int8Linear

    torch.set_num_threads(1)
    a = torch.randn(GEMM, GEMM)
    linear = torch.nn.Linear(GEMM, GEMM)
    calls = {
        "fp32": lambda: linear(a),
        "bf16": (lambda lb, ab: lambda: lb(ab))(torch.nn.Linear(GEMM, GEMM).bfloat16(), a.bfloat16()),
        "int8": (lambda q: lambda: q(a))(Int8Linear(linear)),
    }
    rates = {}
    with torch.inference_mode():
        for name, call in calls.items():
            rates[name] = best_rate(call, 2 * GEMM**3)
    return rates


def generated(spec: ModelSpec, items: int) -> Batch:
    """``items`` inputs drawn by the synthetic generator (no labels: no teacher pass)."""
    rng = np.random.default_rng([spec.seed, items, 99])
    return model_inputs(synthetic.features(spec.schema, items, rng), spec.schema)


def gate(backend: str, precision: str, options: tuple, model: str, tiny: Dataset, threads: int) -> float:
    """AUC over the reference AUC (first task) of the backend on the tiny dataset."""
    b = get_backend(backend)(BackendConfig(model=ModelSpec(name=model, scale="tiny"), threads=threads,
                                           precision=precision, options=options))
    b.load()
    scores = np.concatenate([b.predict(Batch(dense=tiny.items.dense[s:s + 4096],
                                             sparse=tuple(x[s:s + 4096] for x in tiny.items.sparse))).reshape(-1, tiny.labels.shape[1])
                             for s in range(0, len(tiny), 4096)])
    b.close()
    reference = tiny.reference_auc
    assert reference is not None
    return auc(tiny.labels[:, 0], scores[:, 0]) / reference[0]


def batches_of(items: Batch, batch: int) -> list[Batch]:
    return [Batch(dense=items.dense[s:s + batch], sparse=tuple(x[s:s + batch] for x in items.sparse))
            for s in range(0, len(items) - batch + 1, batch)]


def items_per_s(backend: Backend, batches: list[Batch], seconds: float) -> tuple[float, float]:
    """(items per CPU-second, items per wall-second) of ``backend.predict`` back to back over
    ``batches``, cycled for at least ``seconds`` of CPU time."""
    backend.predict(batches[0])
    done = 0
    c0, w0 = time.process_time(), time.perf_counter()
    while time.process_time() - c0 < seconds:
        for b in batches:
            backend.predict(b)
            done += len(b)
    return done / (time.process_time() - c0), done / (time.perf_counter() - w0)


def lookup_items_per_s(backend: Backend, batches: list[Batch], seconds: float) -> float | None:
    """Items per CPU-second of the pooled lookups alone (every table of a DLRM model, as its
    ``forward`` runs them), or None for a model or backend without them."""
    model = getattr(backend, "_model", None)
    bags = getattr(model, "embeddings", None)
    if not isinstance(bags, torch.nn.ModuleList) or not hasattr(model, "bottom"):
        return None
    sparse = [[torch.from_numpy(x) for x in b.sparse] for b in batches]
    done = 0
    with torch.inference_mode():
        c0 = time.process_time()
        while time.process_time() - c0 < seconds:
            for ids in sparse:
                for bag, t in zip(bags, ids, strict=True):
                    bag(t)
                done += len(ids[0])
        return done / (time.process_time() - c0)


@dataclass
class Row:
    model: str
    combo: str
    repeat: int
    load: float
    items_per_s: float
    wall_items_per_s: float
    lookup_items_per_s: float | None
    emb_bytes_per_item: float
    dense_flops_per_item: float
    gate: float


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="all")
    ap.add_argument("--ort-models", default="all", help="models also run on onnxruntime (default all, 'none' for none)")
    ap.add_argument("--combos", default="all", help="labels of COMBOS to run, comma-separated (default all)")
    ap.add_argument("--scale", default="small")
    ap.add_argument("--batch", type=int, default=2048, help="items per predict (the rule tables' max_batch_items)")
    ap.add_argument("--items", type=int, default=16384, help="generated items cycled over")
    ap.add_argument("--seconds", type=float, default=2.0, help="CPU seconds per measurement")
    ap.add_argument("--repeats", type=int, default=1, help="rounds over the combos, in alternating order")
    ap.add_argument("--malloc", default="keep", choices=("keep", "default"),
                    help="keep: the backends' malloc policy; default: glibc's own (the policy is never applied)")
    args = ap.parse_args()
    if args.malloc == "default":
        import suite.backends.base as base

        base._malloc_policy = "glibc default (benchmarks/cpu.py --malloc default)"
    models = sorted(set(MODELS) - set(SKIPPED)) if args.models == "all" else args.models.split(",")
    ort_models = models if args.ort_models == "all" else args.ort_models.split(",")
    combos = COMBOS if args.combos == "all" else [c for c in COMBOS if c[0] in args.combos.split(",")]
    cores = len(os.sched_getaffinity(0))
    print(f"# {os.uname().nodename}: {cores} cores, torch {torch.__version__}, load average at start {os.getloadavg()}, "
          f"malloc {args.malloc}")
    bw = bandwidths()
    rates = gemm_rates()
    print("# one core, per CPU-second: " + ", ".join(f"{k} {v / 1e9:.1f} GB/s" for k, v in bw.items())
          + f"; one-thread {GEMM}-cube GEMM " + ", ".join(f"{k} {v / 1e9:.0f} GFLOP/s" for k, v in rates.items()))
    rows: list[Row] = []
    for model in models:
        spec = ModelSpec(name=model, scale=args.scale)
        size = spec.config.size(parse_scale(args.scale))
        lookups_dim = [(t.lookups, t.dim) for t in spec.schema.tables]
        batches = batches_of(generated(spec, max(args.items, args.batch)), args.batch)
        tiny = Dataset.load(synthetic.ensure(ModelSpec(name=model, scale="tiny"), default_rows("tiny")))
        mine = [c for c in combos if c[1] != "onnxruntime" or model in ort_models]
        gates: dict[str, float] = {}
        for repeat in range(args.repeats):
            for label, backend, precision, options in mine if repeat % 2 == 0 else mine[::-1]:
                b = get_backend(backend)(BackendConfig(model=spec, threads=1, precision=precision, options=options))
                b.load()
                torch.set_num_threads(1)
                load = os.getloadavg()[0]
                ips, wall = items_per_s(b, batches, args.seconds)
                lookups = lookup_items_per_s(b, batches, args.seconds)
                b.close()
                if label not in gates:
                    gates[label] = gate(backend, precision, options, model, tiny, threads=cores)
                rows_as = dict(options).get("rows", precision)
                row_bytes = {"fp32": lambda d: 4 * d, "bf16": lambda d: 2 * d}.get(rows_as, lambda d: d + ROW_EXTRA[backend])
                row = Row(model, label, repeat, load, ips, wall, lookups, sum(k * row_bytes(d) for k, d in lookups_dim),
                          size.dense_flops_per_item, gates[label])
                rows.append(row)
                print(json.dumps(row.__dict__), flush=True)
    if args.models == "all":
        print("# not measured: " + "; ".join(f"{m} ({why})" for m, why in SKIPPED.items()))
    print(f"# load average at the end {os.getloadavg()}")
    print()
    table(rows, bw["copy"], rates)


def table(rows: list[Row], copy: float, rates: dict[str, float]) -> None:
    """One Markdown row per (model, combo); repeats side by side as ``a / b``."""
    groups: dict[tuple[str, str], list[Row]] = {}
    for r in rows:
        groups.setdefault((r.model, r.combo), []).append(r)
    fp32 = {(m, c.split()[0]): sum(r.items_per_s for r in g) / len(g) for (m, c), g in groups.items() if c.endswith("fp32")}
    print("| model | backend, precision | load | items/s/core | wall items/s | samples/s/core | x fp32 | emb GB/s | % of copy BW "
          "| lookups alone GB/s | % of copy BW | dense GFLOP/s | % of GEMM | AUC / ref | gate |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")

    def cells(g: list[Row], f: Callable[[Row], float | None], fmt: str) -> str:
        return " / ".join("" if (v := f(r)) is None else format(v, fmt) for r in g).strip(" /")

    for (model, combo), g in groups.items():
        arith = "int8" if "int8" in combo and "bf16 dense" not in combo else ("bf16" if "bf16" in combo else "fp32")
        base = fp32.get((model, combo.split()[0]), float("nan"))
        r0 = g[0]
        verdict = "99.9%" if r0.gate >= 0.999 else ("99%" if r0.gate >= 0.99 else "FAIL")

        def look(r: Row) -> float | None:
            return None if r.lookup_items_per_s is None else r.lookup_items_per_s * r.emb_bytes_per_item

        print(" | ".join([
            f"| {model}", combo, cells(g, lambda r: r.load, ".1f"), cells(g, lambda r: r.items_per_s, ",.0f"),
            cells(g, lambda r: r.wall_items_per_s, ",.0f"),
            cells(g, lambda r: r.items_per_s / SAMPLE_ITEMS, ".1f") if model == "dlrm-v2" else "",
            cells(g, lambda r: r.items_per_s / base, ".2f"),
            cells(g, lambda r: r.items_per_s * r.emb_bytes_per_item / 1e9, ".2f"),
            cells(g, lambda r: 100 * r.items_per_s * r.emb_bytes_per_item / copy, ".0f"),
            cells(g, lambda r: None if (v := look(r)) is None else v / 1e9, ".2f"),
            cells(g, lambda r: None if (v := look(r)) is None else 100 * v / copy, ".0f"),
            cells(g, lambda r: r.items_per_s * r.dense_flops_per_item / 1e9, ".1f"),
            cells(g, lambda r: 100 * r.items_per_s * r.dense_flops_per_item / rates[arith], ".0f"),
            f"{100 * r0.gate:.2f}%", f"{verdict} |",
        ]))


if __name__ == "__main__":
    main()
