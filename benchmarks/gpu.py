"""torch-cuda on every model: Offline items/s and Server QPS at the SLA, fp32 and bf16.

For each model and precision: a short raw measurement sets Offline's expected QPS, a LoadGen
Offline run gives throughput, and a few LoadGen Server runs bracket the highest target QPS whose
tail latency meets the model's SLA (the deeprecsys table's p95 target; dlrm-v2: MLPerf's p99
60 ms). Throughput is turned into effective embedding bandwidth (bytes of rows gathered per item,
at the precision's width) and dense TFLOP/s, next to the card's peak.

Datasets here are features only (no teacher labels): this measures speed, and the accuracy of
every backend and precision is what ``tests/test_backends.py`` checks.

    python3 benchmarks/gpu.py [--models all] [--scale full] [--seconds 3] [--out DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

from common import loadgen_run, raw_items_per_s
from suite.backends import BackendConfig, get_backend
from suite.config import Mode, RunConfig, Scenario, resolve
from suite.datasets import multihot, synthetic
from suite.datasets.library import QueryLibrary
from suite.datasets.queries import QuerySizes
from suite.datasets.store import Dataset
from suite.models import MODELS, ModelSpec, parse_scale

#: Peak figures from NVIDIA's datasheets (SXM parts): HBM bandwidth GB/s, dense TFLOP/s.
PEAKS = {
    "H100": {"hbm_gbs": 3350, "fp32": 67, "tf32": 494, "bf16": 989, "fp16": 989},
    "H200": {"hbm_gbs": 4800, "fp32": 67, "tf32": 494, "bf16": 989, "fp16": 989},
}
#: Row caps for models that do not fit the card at full scale.
SCALE_FOR = {"dlrm-v2": "2000000"}


def features_only(spec: ModelSpec, rows: int, query_size: str) -> QueryLibrary:
    schema = spec.schema
    raw = synthetic.features(schema, rows, np.random.default_rng([spec.seed, rows]))
    items = multihot.model_inputs(raw, schema)
    data = Dataset(path=Path("/nonexistent"), meta={}, items=items, labels=np.zeros((rows, schema.tasks), np.int8))
    return QueryLibrary(data, QuerySizes.parse(query_size).offsets(rows, seed=spec.seed))


def loadgen(library, backend, settings, workers: int) -> dict:  # type: ignore[no-untyped-def]
    outcome, d = loadgen_run(library, backend, settings, workers=workers)
    items_per_query = outcome.completed_items / max(outcome.completed_queries, 1)
    return {"detail": d, "items_per_query": items_per_query, "errors": outcome.errors}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="all")
    ap.add_argument("--precisions", default="fp32,bf16")
    ap.add_argument("--scale", default="full")
    ap.add_argument("--rows", type=int, default=131072)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--offline-batch", type=int, default=16384)
    ap.add_argument("--server-batch", type=int, default=4096)
    ap.add_argument("--options", default="", help="torch-cuda options, e.g. cuda_graphs=1")
    ap.add_argument("--out", type=Path, default=Path("."))
    args = ap.parse_args()

    name = torch.cuda.get_device_name(0)
    peak = next((v for k, v in PEAKS.items() if k in name), PEAKS["H100"])
    models = list(MODELS) if args.models == "all" else args.models.split(",")
    options = tuple(tuple(kv.split("=", 1)) for kv in args.options.split(",") if kv)
    rows_out = []
    print(f"device: {name}; peaks {peak}; {args.seconds} s per LoadGen run, workers {args.workers}", flush=True)
    for model in models:
        scale = SCALE_FOR.get(model, args.scale)
        spec = ModelSpec(name=model, scale=scale)
        size = spec.config.size(parse_scale(scale))
        server_cfg = RunConfig(model=spec, backend="torch-cuda", scenario=Scenario.SERVER, profile="smoke")
        base = resolve(server_cfg)
        t0 = time.perf_counter()
        library = features_only(spec, args.rows, base.query_size)
        gen_s = time.perf_counter() - t0
        for precision in args.precisions.split(","):
            try:
                rows_out.append(measure(args, spec, size, base, library, precision, options, peak, name, gen_s))
            except Exception as exc:  # noqa: BLE001 - one model's failure must not end the sweep
                print(f"  {model:<10} {precision:<5} FAILED: {type(exc).__name__}: {exc}", flush=True)
                rows_out.append({"model": model, "precision": precision, "error": f"{type(exc).__name__}: {exc}"})
            torch.cuda.empty_cache()
        (args.out / "gpu.json").write_text(json.dumps(rows_out, indent=1, default=str))


def measure(args, spec, size, base, library, precision, options, peak, name, gen_s) -> dict:  # type: ignore[no-untyped-def]
    """Offline throughput and Server QPS at the SLA of one model at one precision."""
    model = spec.name
    scale = spec.scale
    backend = get_backend("torch-cuda")(BackendConfig(model=spec, precision=precision, options=options))  # type: ignore[arg-type]
    t0 = time.perf_counter()
    backend.load()
    load_s = time.perf_counter() - t0
    raw = raw_items_per_s(backend, library.items, min(args.offline_batch, len(library.dataset)), 1.0)
    q_items = float(library.sizes.mean())
    common = dict(min_duration_ms=int(args.seconds * 1000), performance_sample_count=0, mode=Mode.PERFORMANCE)
    off = dataclasses.replace(base, scenario=Scenario.OFFLINE, target_qps=1.2 * raw / q_items, min_query_count=1,
                              max_batch_items=args.offline_batch, **common)
    r = loadgen(library, backend, off, args.workers)
    offline_qps = float(r["detail"].get("result_samples_per_second") or 0)
    offline_items = offline_qps * r["items_per_query"]
    sla_ns = base.target_latency_ns
    pct = base.target_latency_percentile
    key = f"result_{100 * pct:.2f}_percentile_latency_ns"

    def server_ok(qps: float) -> tuple[bool, float]:
        s = dataclasses.replace(base, target_qps=qps, min_query_count=256, max_batch_items=args.server_batch, **common)
        res = loadgen(library, backend, s, args.workers)
        d = res["detail"]
        lat = float(d.get(key) or 0)
        ok = d.get("result_validity") == "VALID" and lat <= sla_ns and not res["errors"]
        print(f"    server {model} {precision} {qps:10,.0f} qps: p{100 * pct:.0f} {lat / 1e6:8.2f} ms {'ok' if ok else 'FAIL'}", flush=True)
        return ok, lat

    # Bracket: from 0.8x the Offline rate, halve until a run meets the SLA (at most 6 times), then
    # bisect twice between the last pass and the first failure above it.
    lo, hi = 0.0, 0.8 * offline_qps
    if server_ok(hi)[0]:
        lo, hi = hi, 1.1 * offline_qps
        if server_ok(hi)[0]:
            lo = hi
    else:
        for _ in range(6):
            probe = hi / 2
            if server_ok(probe)[0]:
                lo = probe
                break
            hi = probe
    for _ in range(2 if lo and hi > lo * 1.15 else 0):
        mid = (lo + hi) / 2
        if server_ok(mid)[0]:
            lo = mid
        else:
            hi = mid
    width = {"fp32": 4, "tf32": 4, "bf16": 2, "fp16": 2}[precision]
    emb_gbs = offline_items * size.embedding_bytes_per_item * width / 4 / 1e9
    tflops = offline_items * size.dense_flops_per_item / 1e12
    row = {
        "model": model, "scale": scale, "precision": precision, "raw_items_per_s": raw,
        "offline_queries_per_s": offline_qps, "offline_items_per_s": offline_items,
        "server_qps_at_sla": lo, "sla_ms": sla_ns / 1e6, "percentile": pct,
        "embedding_gb_per_s": emb_gbs, "tflops": tflops, "load_s": load_s, "generate_s": gen_s,
        "peak": peak, "device": name, "offline_errors": r["errors"],
    }
    print(f"  {model:<10} {precision:<5} offline {offline_items:14,.0f} items/s ({offline_qps:10,.0f} q/s)  "
          f"server@SLA {lo:10,.0f} q/s  emb {emb_gbs:8.1f} GB/s ({100 * emb_gbs / peak['hbm_gbs']:.1f}% of HBM)  "
          f"{tflops:7.2f} TFLOP/s ({100 * tflops / peak[precision]:.1f}% of peak)", flush=True)
    backend.close()
    return row


if __name__ == "__main__":
    main()
