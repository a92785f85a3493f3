"""The CPU path at hardware speed: every model at fp32, bf16 and int8 on one core, against this
machine's measured memory bandwidth and GEMM rates, with the accuracy gate of each precision.

Per model and (backend, precision): items/s of ``predict`` on one thread, back to back on batches
of generated items (the backend's speed, without LoadGen; ``benchmarks/backends_cpu.py`` and the
CLI measure the same through LoadGen); samples/s per core for dlrm-v2 (MLPerf's sample: 270 items
on average); embedding bytes/s (the rows gathered per item at that precision's row size, times
items/s) against a one-core numpy copy's bandwidth; dense GFLOP/s (the model's dense FLOPs per item
times items/s, as if all the time went to the dense layers) against a one-core GEMM of the same
arithmetic; the ratio to fp32; and the AUC as a share of the reference AUC on the model's tiny
generated dataset (the gate: >= 99%, and whether >= 99.9%). Quantization error is per row and per
layer, so the tiny tables gate what the small ones run.

    .venv/bin/python benchmarks/cpu.py [--models all] [--scale small] [--seconds 2] [--ort-models ...]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import dataclass

import numpy as np
import torch
from common import raw_items_per_s

from suite.backends import BackendConfig, get_backend
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
    ("ort fp32", "onnxruntime", "fp32", ()),
    ("ort int8", "onnxruntime", "int8", ()),
]
#: Bytes an int8 table row takes beyond its dim: torch's fp32 scale and bias (ORT's scale is per table).
ROW_EXTRA = {"torch-cpu": 8, "onnxruntime": 0}
GEMM = 1024


def copy_bandwidth() -> float:
    """Bytes/s of a one-core copy of a 256 MiB array (read + write counted), best of 5."""
    src = np.ones(32 * 2**20, dtype=np.float64)
    dst = np.empty_like(src)
    best = 0.0
    for _ in range(5):
        t = time.perf_counter()
        np.copyto(dst, src)
        best = max(best, 2 * src.nbytes / (time.perf_counter() - t))
    return best


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
            call()
            best = 0.0
            for _ in range(5):
                t = time.perf_counter()
                call()
                best = max(best, 2 * GEMM**3 / (time.perf_counter() - t))
            rates[name] = best
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


@dataclass
class Row:
    model: str
    combo: str
    items_per_s: float
    emb_bytes_per_s: float
    dense_flops_per_s: float
    gate: float


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="all")
    ap.add_argument("--ort-models", default="dlrm-rmc3,wnd,mtwnd,ncf", help="models also run on onnxruntime")
    ap.add_argument("--scale", default="small")
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--seconds", type=float, default=2.0)
    args = ap.parse_args()
    models = sorted(MODELS) if args.models == "all" else args.models.split(",")
    cores = len(os.sched_getaffinity(0))
    print(f"# {os.uname().nodename}: {cores} cores, torch {torch.__version__}, load average at start {os.getloadavg()}")
    bandwidth = copy_bandwidth()
    rates = gemm_rates()
    print(f"# one-core numpy copy {bandwidth / 1e9:.1f} GB/s; one-thread {GEMM}-cube GEMM "
          + ", ".join(f"{k} {v / 1e9:.0f} GFLOP/s" for k, v in rates.items()))
    rows: list[Row] = []
    for model in models:
        spec = ModelSpec(name=model, scale=args.scale)
        size = spec.config.size(parse_scale(args.scale))
        lookups_dim = [(t.lookups, t.dim) for t in spec.schema.tables]
        items = generated(spec, args.batch * 4)
        tiny = Dataset.load(synthetic.ensure(ModelSpec(name=model, scale="tiny"), default_rows("tiny")))
        for label, backend, precision, options in COMBOS:
            if backend == "onnxruntime" and model not in args.ort_models.split(","):
                continue
            b = get_backend(backend)(BackendConfig(model=spec, threads=1, precision=precision, options=options))
            b.load()
            torch.set_num_threads(1)
            ips = raw_items_per_s(b, items, args.batch, args.seconds)
            b.close()
            row_bytes = {"fp32": lambda d: 4 * d, "bf16": lambda d: 2 * d}.get(precision, lambda d: d + ROW_EXTRA[backend])
            emb = sum(k * row_bytes(d) for k, d in lookups_dim)
            row = Row(model, label, ips, ips * emb, ips * size.dense_flops_per_item,
                      gate(backend, precision, options, model, tiny, threads=cores))
            rows.append(row)
            print(json.dumps(row.__dict__), flush=True)
    print(f"# load average at the end {os.getloadavg()}")
    print()
    fp32 = {(r.model, r.combo.split()[0]): r.items_per_s for r in rows if r.combo.endswith("fp32")}
    print("| model | backend, precision | items/s/core | samples/s/core | x fp32 | emb GB/s | % of copy BW | dense GFLOP/s | % of GEMM | AUC / ref | gate |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for r in rows:
        arith = "int8" if "int8" in r.combo and "bf16 dense" not in r.combo else ("bf16" if "bf16" in r.combo else "fp32")
        base = fp32.get((r.model, r.combo.split()[0]))
        samples = f"{r.items_per_s / SAMPLE_ITEMS:.1f}" if r.model == "dlrm-v2" else ""
        verdict = "99.9%" if r.gate >= 0.999 else ("99%" if r.gate >= 0.99 else "FAIL")
        print(f"| {r.model} | {r.combo} | {r.items_per_s:,.0f} | {samples} | {r.items_per_s / base:.2f} | "
              f"{r.emb_bytes_per_s / 1e9:.2f} | {100 * r.emb_bytes_per_s / bandwidth:.0f}% | {r.dense_flops_per_s / 1e9:.1f} | "
              f"{100 * r.dense_flops_per_s / rates[arith]:.0f}% | {100 * r.gate:.2f}% | {verdict} |")


if __name__ == "__main__":
    main()
