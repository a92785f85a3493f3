"""torch-cuda on every model: Offline items/s and Server QPS at the SLA, fp32 and bf16.

For each model and precision: a short raw measurement sets Offline's expected QPS, a LoadGen
Offline run gives throughput, and a few LoadGen Server runs bracket the highest target QPS whose
tail latency meets the model's SLA (the deeprecsys table's p95 target; dlrm-v2: MLPerf's p99
60 ms). Throughput is turned into effective embedding bandwidth (bytes of rows gathered per item,
at the precision's width) and dense TFLOP/s, next to the card's peak.

Datasets here are features only (no teacher labels): this measures speed, and the accuracy of
every backend and precision is what ``tests/test_backends.py`` checks.

    python3 benchmarks/gpu.py [--models all] [--scale full] [--seconds 3] [--out DIR]
    python3 benchmarks/gpu.py --sections kernels,dlrm-v2 [--dlrm-items 65536] [--dlrm-batch 16384]
        [--dlrm-variants 'dense=fp8;dense=bf16,gemm=cublas'] [--layers] [--profile] [--sustain 12]

``--sections kernels`` measures suite.backends.kernels alone: the fused pooled lookup against torch's
embedding_bag and the device copy rate, the fused cross layer against eager and the matmul rate.
``--sections dlrm-v2`` runs MLPerf's DLRM-v2 with its full 26 tables on the GPU: a plain PyTorch
loop next to the fused model per precision, items/s per batch and the AUC against labels drawn
from the model itself (bf16 rows, fp32 dense layers), as the suite's teacher does. ``--sustain S``
adds, per fused variant, S seconds of replays of one batch and S of 16 distinct batches in turn:
a short timing runs at the GPU's boost clock, a run at whatever its power limit leaves.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch
from common import cuda_ms, loadgen_run, raw_items_per_s

from suite.backends import BackendConfig, get_backend
from suite.config import Mode, RunConfig, Scenario, resolve
from suite.datasets import multihot, synthetic
from suite.datasets.library import QueryLibrary
from suite.datasets.queries import QuerySizes
from suite.datasets.store import Dataset
from suite.models import MODELS, ModelSpec, build, parse_scale

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


def loadgen(library, backend, settings, workers: int) -> dict:
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
    ap.add_argument("--sections", default="sweep", help="any of sweep, kernels, lookups (the DeepRecSys part of kernels), dlrm-v2 (comma-separated)")
    ap.add_argument("--dlrm-items", type=int, default=65536)
    ap.add_argument("--dlrm-batch", type=int, default=16384)
    ap.add_argument("--dlrm-variants", default=DLRM_VARIANTS,
                    help="fused variants, ';'-separated, each 'dense=fp8|bf16[,rows=..,gemm=..,residual=..,fuse_last=1,split=1]'")
    ap.add_argument("--layers", action="store_true", help="per-matmul table (Triton, tile sweep, cuBLAS) per dense mode")
    ap.add_argument("--profile", action="store_true", help="torch.profiler kernel times of one forward per variant")
    ap.add_argument("--sustain", type=float, default=0.0,
                    help="seconds of sustained replays per fused variant: one batch again and again, then distinct batches in turn")
    args = ap.parse_args()
    sections = args.sections.split(",")
    extra: list[dict] = []
    for section, fn in (("kernels", lambda: kernels_section(extra)), ("lookups", lambda: lookups_section(extra)),
                        ("dlrm-v2", lambda: dlrm_v2_section(extra, args.dlrm_items, args.dlrm_batch, args.dlrm_variants, args.layers,
                                                            args.profile, args.sustain))):
        if section in sections:
            try:
                fn()
            except Exception as exc:
                import traceback

                traceback.print_exc()
                extra.append({"section": section, "error": f"{type(exc).__name__}: {exc}"})
            (args.out / "kernels.json").write_text(json.dumps(extra, indent=1, default=str))
            torch.cuda.empty_cache()
    if "sweep" not in sections:
        return

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
            except Exception as exc:
                print(f"  {model:<10} {precision:<5} FAILED: {type(exc).__name__}: {exc}", flush=True)
                rows_out.append({"model": model, "precision": precision, "error": f"{type(exc).__name__}: {exc}"})
            torch.cuda.empty_cache()
        (args.out / "gpu.json").write_text(json.dumps(rows_out, indent=1, default=str))


def measure(args, spec, size, base, library, precision, options, peak, name, gen_s) -> dict:
    """Offline throughput and Server QPS at the SLA of one model at one precision."""
    model = spec.name
    scale = spec.scale
    backend = get_backend("torch-cuda")(BackendConfig(model=spec, precision=precision, options=options))
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



# --- kernels and DLRM-v2 at full scale (``--sections kernels,dlrm-v2``) ------------------------------------

#: MLPerf DLRM-v2: items per sample (the Criteo 1TB day-23 mean), for samples/s.
ITEMS_PER_SAMPLE = 270


def sustained(fwd, schema, n: int, seconds: float, pool: int = 16) -> dict:
    """A graph of ``fwd`` at ``n`` items replayed for ``seconds``: first on one batch, again and
    again (what a short timing sees: the same rows warm in L2, the clocks at their boost), then
    for as long on ``pool`` distinct batches in turn, each copied into the graph's inputs before
    its replay (what a run's stream of batches costs). Replays are timed alone, by CUDA events;
    the mean of each second shows whether the GPU slows as it stays busy (clocks, power)."""
    from suite.backends.kernels import fused

    drawn = [fused.calibration_batch(schema, n, seed=100 + k) for k in range(pool)]
    batches = [(torch.from_numpy(d).to("cuda", torch.bfloat16), torch.from_numpy(np.concatenate(s, axis=1)).cuda())
               for d, s in drawn]
    d0, s0 = batches[0][0].clone(), batches[0][1].clone()
    stream = torch.cuda.Stream()
    graph = torch.cuda.CUDAGraph()
    with torch.inference_mode():
        with torch.cuda.stream(stream):
            fwd(d0, s0)
        torch.cuda.synchronize()
        with torch.cuda.graph(graph, stream=stream):
            fwd(d0, s0)
    found: dict = {"items": n, "pool": pool}
    for name, turns in (("same_batch", 1), ("distinct_batches", pool)):
        pairs = []
        started = time.perf_counter()
        k = 0
        with torch.cuda.stream(stream):
            while time.perf_counter() - started < seconds:
                if turns > 1:
                    d0.copy_(batches[k % turns][0], non_blocking=True)
                    s0.copy_(batches[k % turns][1], non_blocking=True)
                a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                a.record(stream)
                graph.replay()
                b.record(stream)
                pairs.append((a, b))
                k += 1
                if k % 64 == 0:
                    pairs[-32][1].synchronize()  # stay at most a few dozen replays ahead of the GPU
        torch.cuda.synchronize()
        origin = pairs[0][0]
        at = np.asarray([origin.elapsed_time(a) for a, _ in pairs]) / 1e3
        ms = np.asarray([a.elapsed_time(b) for a, b in pairs])
        per_second = [round(float(ms[(at >= t) & (at < t + 1)].mean()), 4) for t in range(int(at[-1]) + 1) if ((at >= t) & (at < t + 1)).any()]
        found[name] = {"replays": len(ms), "ms_mean": round(float(ms.mean()), 4), "ms_by_second": per_second,
                       "samples_per_s": round(n / float(ms.mean()) * 1e3 / ITEMS_PER_SAMPLE)}
    same, distinct = found["same_batch"], found["distinct_batches"]
    print(f"    sustained {seconds:.0f} s at {n}: one batch {same['ms_mean']:.3f} ms ({same['samples_per_s']:,} samples/s; "
          f"by second {same['ms_by_second']}); {pool} batches in turn {distinct['ms_mean']:.3f} ms "
          f"({distinct['samples_per_s']:,}; by second {distinct['ms_by_second']})", flush=True)
    del graph
    return found


def copy_rate_gbs() -> float:
    """Device-to-device copy rate (read + write bytes), 4 GiB each way."""
    a = torch.empty(1 << 32, dtype=torch.uint8, device="cuda")
    b = torch.empty_like(a)
    ms = cuda_ms(lambda: b.copy_(a), 10)
    del a, b
    return 2 * (1 << 32) / ms / 1e6


def fastest_block(packed, ids: torch.Tensor, x: torch.Tensor, col0: int, blocks) -> tuple[float, int, int, int]:
    """(ms, block_n, block_l, warps) of the fastest of ``blocks`` for one pooled lookup into ``x``."""
    from suite.backends.kernels import lookup

    return min((cuda_ms(lambda bn=bn, bl=bl, w=w: lookup.pooled(packed, ids, x, col0, block_n=bn, block_l=bl, num_warps=w)), bn, bl, w)
               for bn, bl, w in blocks)


def _row_read_kernel():
    """A Triton kernel that reads one random row a lane group and stores its sum (4 bytes a row):
    the plainest random row read, a ceiling for a pooled lookup's rows a second at that row size."""
    import triton
    import triton.language as tl

    @triton.jit
    def row_read(table, ids, out, n, DIM: tl.constexpr, BLOCK: tl.constexpr):
        r = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        m = r < n
        idx = tl.load(ids + r, mask=m, other=0).to(tl.int64)
        v = tl.load(table + idx[:, None] * DIM + tl.arange(0, DIM)[None, :], mask=m[:, None], other=0.0)
        tl.store(out + r, tl.sum(v.to(tl.float32), axis=1), mask=m)

    return row_read


def row_read_ceiling(table: torch.Tensor, ids: torch.Tensor) -> tuple[float, int, int]:
    """(ms, BLOCK, warps) of the fastest plain random read of ``ids``'s rows of ``table`` (2-D,
    contiguous) over a few launch shapes."""
    kernel = _row_read_kernel()
    flat = ids.reshape(-1).contiguous()
    n = flat.numel()
    out = torch.empty(n, dtype=torch.float32, device=table.device)
    best = None
    for block, warps in ((64, 4), (128, 4), (256, 4), (256, 8), (512, 8), (1024, 8)):
        ms = cuda_ms(lambda b=block, w=warps: kernel[(triton_cdiv(n, b),)](table, flat, out, n, DIM=table.shape[1], BLOCK=b, num_warps=w))
        if best is None or ms < best[0]:
            best = (ms, block, warps)
    return best


def triton_cdiv(a: int, b: int) -> int:
    return -(-a // b)


def suite_ids(rows: int, shape: tuple[int, int], seed: int) -> np.ndarray:
    """Ids as the suite's generator draws a table's (``synthetic.features``): Zipf-ranked with its
    exponent, scattered over the table by an affine bijection."""
    rng = np.random.default_rng(seed)
    a, c = synthetic._scatter(rng, rows)
    return ((synthetic.zipf_ranks(rng, rows, shape) * a + c) % rows).astype(np.int32)


def lookups_section(out: list[dict], copy: float | None = None, g: torch.Generator | None = None) -> None:
    """DeepRecSys's embedding-bound models at full scale (RMC1: 8 tables of 4 M rows of 32, 80 ids
    each; RMC2: 32 of 500 k rows of 64, 120 ids): the fused lookup in fp32, bf16 and fp8 rows
    against the device copy rate; the issue's goal is 50% of it.

    Two id draws: uniform over each table (every row from HBM: the worst case) and the suite's own
    data (Zipf 1.05 per table, as ``suite data generate`` draws DeepRecSys's tables, whose hot rows
    stay in L2). Beside them, a plain random read of the same rows (:func:`row_read_ceiling`,
    uniform ids): what the memory gives rows of that size, whatever the kernel."""
    from suite.backends.kernels import lookup

    if copy is None:
        copy = copy_rate_gbs()
        print(f"lookups: device copy {copy:,.0f} GB/s", flush=True)
    g = g or torch.Generator(device="cuda").manual_seed(0)
    for model, n_tables, t_rows, t_dim, t_lookups in (("dlrm-rmc1", 8, 4_000_000, 32, 80), ("dlrm-rmc2", 32, 500_000, 64, 120)):
        weights = [torch.randn(t_rows, t_dim, device="cuda", generator=g) * 0.1 for _ in range(n_tables)]
        draws = {"uniform": torch.randint(0, t_rows, (4096, n_tables * t_lookups), device="cuda", dtype=torch.int32, generator=g),
                 "zipf": torch.from_numpy(np.concatenate([suite_ids(t_rows, (4096, t_lookups), seed=k) for k in range(n_tables)], axis=1)).cuda()}
        for row_type, scales in (("fp32", "inline"), ("bf16", "inline"), ("fp8", "table")):  # fp8: --precision fp8's rows
            packed = lookup.pack(weights, [t_lookups] * n_tables, row_type, scales=scales)
            x = torch.empty((4096, n_tables * t_dim), dtype=torch.float32, device="cuda")
            # lookup.default_block's pick, what the backend launches, and a few more: short rows' two
            # ids a step, and 16 x 4 (the default before), whose ids cross warps for 64-byte rows
            default = lookup.default_block(packed)
            blocks = dict.fromkeys((default, (32, 2, 4), (64, 2, 4), (64, 2, 8), (32, 4, 4), (16, 4, 4), (128, 2, 8), (32, 1, 4), (64, 1, 8)))
            for draw, ids in draws.items():
                looked = ids.numel()
                default_ms = cuda_ms(lambda ids=ids: lookup.pooled(packed, ids, x, 0))
                ms, bn, bl, warps = fastest_block(packed, ids, x, 0, blocks)
                got = lookup.pooled(packed, ids[:256], out_dtype=torch.float32)
                err = (got - lookup.pooled_reference(packed, ids[:256])).abs().max().item()
                gbs = looked * packed.row_bytes / ms / 1e6
                default_gbs = looked * packed.row_bytes / default_ms / 1e6
                out.append({"kernel": "lookup", "model": model, "how": f"fused {row_type}", "ids": draw, "ms": ms, "gbs": gbs,
                            "copy_frac": gbs / copy, "block": [bn, bl, warps], "default_block": list(default),
                            "default_ms": default_ms, "default_copy_frac": default_gbs / copy, "max_err_vs_ref": err})
                print(f"  lookup {model} fused {row_type:<5} {draw:<7} 4096 items: {ms:.3f} ms {looked / ms / 1e6:.2f} G rows/s {gbs:.0f} GB/s "
                      f"({100 * gbs / copy:.0f}% of copy) block {bn}x{bl} w{warps}; default block "
                      f"{'x'.join(map(str, default[:2]))} w{default[2]} {default_ms:.3f} ms ({100 * default_gbs / copy:.0f}%) err {err:.1e}", flush=True)
            if row_type != "fp8":
                # every table's rows in one tensor, as many uniform ids as the lookup reads
                table = torch.cat([w.to(torch.bfloat16 if row_type == "bf16" else torch.float32) for w in weights])
                ids = torch.randint(0, table.shape[0], (draws["uniform"].numel(),), device="cuda", dtype=torch.int32, generator=g)
                ms, block, warps = row_read_ceiling(table, ids)
                rows_s = ids.numel() / ms / 1e6
                row_bytes = table.shape[1] * table.element_size()
                out.append({"kernel": "row_read", "model": model, "how": f"plain random read {row_type}", "ids": "uniform",
                            "ms": ms, "grows_s": rows_s, "row_bytes": row_bytes, "gbs": rows_s * row_bytes, "copy_frac": rows_s * row_bytes / copy,
                            "block": [block, warps]})
                print(f"  row read {model} {row_type:<5} uniform {row_bytes}-byte rows: {rows_s:.2f} G rows/s "
                      f"{rows_s * row_bytes:.0f} GB/s ({100 * rows_s * row_bytes / copy:.0f}% of copy) block {block} w{warps}", flush=True)
                del table
            del packed
        del weights
        torch.cuda.empty_cache()


def kernels_section(out: list[dict]) -> None:
    """Fused lookup vs torch's embedding_bag; cross layer fused vs unfused vs the matmul rate."""
    from suite.backends.kernels import dense as dk
    from suite.backends.kernels import lookup
    from suite.models.configs import DLRM_V2_HOTNESS

    copy = copy_rate_gbs()
    print(f"kernels: device copy {copy:,.0f} GB/s", flush=True)
    n, rows, dim = 16384, 4_000_000, 128
    hot = list(DLRM_V2_HOTNESS)
    g = torch.Generator(device="cuda").manual_seed(0)
    weights = [torch.randn(rows, dim, device="cuda", dtype=torch.bfloat16, generator=g) * 0.1 for _ in hot]
    ids = torch.randint(0, rows, (n, sum(hot)), device="cuda", dtype=torch.int32, generator=g)
    cols = np.cumsum([0, *hot])
    per = [ids[:, c:c + h].contiguous() for c, h in zip(cols, hot, strict=False)]
    looked = n * sum(hot)

    def torch_loop() -> None:
        torch.cat([torch.nn.functional.embedding_bag(p, w, mode="sum") for p, w in zip(per, weights, strict=False)], dim=1)

    ms = cuda_ms(torch_loop)
    row = {"kernel": "lookup", "how": "torch embedding_bag x26 bf16", "ms": ms, "grows_s": looked / ms / 1e6,
           "gbs": looked * dim * 2 / ms / 1e6}
    out.append(row)
    print(f"  lookup torch x26 bf16: {ms:.3f} ms {row['grows_s']:.2f} G rows/s {row['gbs']:.0f} GB/s", flush=True)
    for row_type, scales in (("bf16", "inline"), ("fp8", "inline"), ("int8", "inline"), ("fp8", "apart"),
                             ("fp8", "table"), ("int8", "table")):
        split = scales != "inline"
        packed = lookup.pack(weights, hot, row_type, scales=scales)
        x = torch.empty((n, (len(hot) + 1) * dim), dtype=torch.bfloat16, device="cuda")
        ms, bn, bl, warps = fastest_block(packed, ids, x, dim, ((16, 4, 4), (32, 4, 4), (16, 8, 4), (8, 8, 4), (32, 8, 8), (16, 16, 8), (64, 4, 8)))
        if scales != "apart":  # what the dlrm-v2 section's fused models then use
            lookup.BLOCKS[(row_type if scales == "inline" else f"{row_type}/table", dim)] = (bn, bl, warps)
        got = lookup.pooled(packed, ids[:256], out_dtype=torch.float32)
        err = (got - lookup.pooled_reference(packed, ids[:256])).abs().max().item()
        gbs = looked * packed.row_bytes / ms / 1e6
        name = f"{row_type}{f' (scales {scales})' if split else ''}"
        row = {"kernel": "lookup", "how": f"fused {name}", "ms": ms, "grows_s": looked / ms / 1e6, "gbs": gbs,
               "copy_frac": gbs / copy, "block": [bn, bl, warps], "max_err_vs_ref": err}
        out.append(row)
        print(f"  lookup fused {name:<20}: {ms:.3f} ms {row['grows_s']:.2f} G rows/s {gbs:.0f} GB/s "
              f"({100 * gbs / copy:.0f}% of copy) block {bn}x{bl} w{warps} err {err:.1e}", flush=True)
        del packed
    del weights
    torch.cuda.empty_cache()
    lookups_section(out, copy, g)

    m, w, r = 16384, 3456, 512
    flop = 2 * m * w * r * 2
    x0 = torch.randn(m, w, device="cuda", dtype=torch.bfloat16)
    xl = torch.randn(m, w, device="cuda", dtype=torch.bfloat16)
    down = torch.randn(r, w, device="cuda", dtype=torch.bfloat16) / w**0.5
    up = torch.randn(w, r, device="cuda", dtype=torch.bfloat16) / r**0.5
    bias = torch.randn(w, device="cuda")
    bias16 = bias.bfloat16()
    h = torch.mm(xl, down.t())
    variants = {
        "matmuls alone (cuBLAS bf16)": lambda: torch.mm(torch.mm(xl, down.t()), up.t()),
        "eager unfused bf16": lambda: x0 * torch.nn.functional.linear(torch.nn.functional.linear(xl, down), up, bias16) + xl,
        "cuBLAS + 1 epilogue kernel bf16": lambda: dk.epilogue(torch.mm(torch.mm(xl, down.t()), up.t()), bias, x0=x0, xl=xl),
        "Triton fused epilogue bf16": lambda: dk.linear(dk.linear(xl, down)[0], up, bias, x0=x0, xl=xl),
        "Triton fused epilogue bf16, x0/x_l prefetched": lambda: dk.linear(
            dk.linear(xl, down)[0], up, bias, x0=x0, xl=xl, tiles=dk.CROSS_CANDIDATES["bf16"][0]),
    }
    sx = float(xl.float().abs().max()) / 448
    sh = float(h.float().abs().max()) / 448
    xq = dk.quantize(xl, sx)
    dq, ds = dk.quantize_weight(down)
    uq, us = dk.quantize_weight(up)
    variants["Triton fused epilogue fp8 (+fp8 copy out)"] = lambda: dk.linear(
        dk.linear(xq, dq, a_scale=sx, w_scale=ds, out_dtype=None, q_scale=sh)[1], uq, bias, a_scale=sh, w_scale=us,
        x0=x0, xl=xl, q_scale=4.0)
    one = torch.ones((), device="cuda")
    variants["matmuls alone (cuBLAS fp8 _scaled_mm)"] = lambda: torch._scaled_mm(
        torch._scaled_mm(xq, dq.t(), scale_a=one, scale_b=one, out_dtype=torch.bfloat16).to(torch.float8_e4m3fn),
        uq.t(), scale_a=one, scale_b=one, out_dtype=torch.bfloat16)
    for name, fn in variants.items():
        try:
            ms = cuda_ms(fn)
        except Exception as exc:
            print(f"  cross {name}: FAILED {type(exc).__name__}: {exc}", flush=True)
            continue
        out.append({"kernel": "cross", "how": name, "ms": ms, "tflops": flop / ms / 1e9})
        print(f"  cross {name:<42}: {ms:.3f} ms {flop / ms / 1e9:6.0f} TFLOP/s", flush=True)


#: ``--dlrm-variants``' default: the fused model with each precision's defaults (torch-cuda's
#: ``fused.DEFAULTS``), after the plain loop.
DLRM_VARIANTS = "dense=fp8;dense=bf16"


def parse_variant(text: str) -> dict[str, str]:
    """``dense=fp8,rows=int8,residual=fp8`` as a dict (``dense`` required)."""
    opts = dict(kv.split("=", 1) for kv in text.split(",") if kv)
    if opts.get("dense") not in ("fp8", "bf16"):
        raise SystemExit(f"a variant needs dense=fp8 or dense=bf16 (got {text!r})")
    return opts


def fuse_variant(model, schema, opts: dict[str, str]):
    """:func:`fused.fuse` with a variant's options, the rest from torch-cuda's defaults."""
    from suite.backends.kernels import fused

    mode = opts["dense"]
    d = fused.DEFAULTS[mode]
    return fused.fuse(model, schema, rows=opts.get("rows", fused.DEFAULT_ROWS[mode]), dense=mode,
                      gemm=opts.get("gemm", d["gemm"]), residual=opts.get("residual", d["residual"]),
                      fuse_last=opts.get("fuse_last", d["fuse_last"]) == "1", row_scales=opts.get("row_scales", d["row_scales"]),
                      release=False)


def layer_table(f, m: int, out: list[dict], label: str, sweep: bool, seen: set) -> None:
    """Per matmul of a fused model at ``m`` items, each timed in a CUDA graph: Triton with the
    tiles it has, the best of a tile sweep (``sweep``; the row keeps every candidate's time), cuBLAS alone and cuBLAS with the epilogue
    kernel the forward would add; then the lookup stage."""
    from suite.backends.kernels import dense as dk

    fp8 = f.dense_mode == "fp8"
    dev = "cuda"
    width = f.dim * (1 + len(f.tables.lookups))
    x = torch.randn(m, width, device=dev).to(f.dtype)
    x2 = torch.randn(m, width, device=dev).to(f.dtype)
    xq, xq2 = x.to(torch.float8_e4m3fn), x2.to(torch.float8_e4m3fn)
    print(f"  layers of {label} at {m} items (ms in a CUDA graph; TFLOP/s of the matmul):", flush=True)
    print(f"    {'layer':<12} {'N x K':<11} {'triton':>7} {'sweep':>7} {'tiles':<22} {'cuBLAS':>7} {'+epi':>7} {'TF/s best':>9}", flush=True)
    n_cross = len(f.cross or [])
    for name, lin in f.layers():
        n, k = lin.weight.shape
        i = int(name[5]) if name.startswith("cross") else int(name[3:])
        if name.endswith(".down"):
            epi: dict = {"out_dtype": None if fp8 else f.dtype, "q_scale": 1.0 if fp8 else None}
            cub_epi: dict = {"q_scale": 1.0, "write_out": False} if fp8 else None
        elif name.endswith(".up"):
            last_cross = i == n_cross - 1
            xl = x if i == 0 else x2
            cross: dict = {"x0": x, "xl": xl}
            if fp8 and f.residual == "x0-fp8":
                cross = {"x0": xq, "x0_scale": 1.0, "xl": xq if i == 0 else x2, "xl_scale": 1.0}
            elif fp8 and f.residual == "fp8":
                cross = {"x0": xq, "x0_scale": 1.0, "xl": xq if i == 0 else xq2, "xl_scale": 1.0}
            od = None if fp8 and (last_cross or f.residual == "fp8") else f.dtype
            epi = {"bias": lin.bias, "q_scale": 1.0 if fp8 else None, "out_dtype": od, **cross}
            cub_epi = {"bias": lin.bias, "q_scale": 1.0 if fp8 else None, "write_out": od is not None, **cross}
        else:
            last_top = i == len(f.top) - 1
            relu = f.relu_top[i]
            if last_top and f.fuse_last:
                epi = {"bias": lin.bias, "relu": relu, "last": (f._last_w, f._last_b)}
            else:
                epi = {"bias": lin.bias, "relu": relu, "q_scale": None if last_top or not fp8 else 1.0,
                       "out_dtype": f.dtype if (last_top or not fp8) else None}
            cub_epi = {"bias": lin.bias, "relu": relu, "q_scale": None if last_top or not fp8 else 1.0,
                       "write_out": last_top or not fp8}
        a = (xq if fp8 else x)[:, :k].contiguous() if k <= width else None
        if a is None:
            continue
        a_scale = 1.0
        tiles = dk.tiles_for(fp8, n, k)
        try:
            t_ms = dk.graph_ms(lambda: dk.linear(a, lin.weight, w_scale=lin.w_scale, a_scale=a_scale, **epi))
        except Exception as exc:
            print(f"    {name}: triton FAILED {type(exc).__name__}: {exc}", flush=True)
            t_ms = float("nan")
        best_ms, best_tiles = t_ms, tiles
        swept: dict[str, float] = {}
        sig = (fp8, n, k, tuple(sorted(epi)), epi.get("out_dtype") is None, "x0" in epi and epi["xl"] is epi["x0"],
               "x0" in epi and epi["x0"].dtype, "xl" in epi and epi["xl"].dtype)
        if sweep and sig not in seen and name not in ("cross0.up", f"cross{n_cross - 1}.up"):
            seen.add(sig)
            kind = "fp8" if fp8 else "bf16"
            saved = dk.TUNED.get((kind, n, k))
            # fp8: the pointer kernel's candidates and the persistent TMA kernel's; bf16 (cuBLAS by
            # default): whether the persistent kernel beats cuBLAS plus its epilogue
            cands = (dk.CANDIDATES[kind] if fp8 else (tiles,)) + dk.PERSISTENT_CANDIDATES[kind]
            if "x0" in epi and fp8:
                cands += dk.CROSS_CANDIDATES[kind]
            if "last" in epi:
                cands = tuple(dataclasses.replace(c, block_n=256) for c in cands if c.block_m <= 128 and not c.persistent)
            timings = dk.tune(m, n, k, fp8=fp8, candidates=cands, **epi)
            swept = {dk.tiles_text(t): round(ms, 5) for t, ms in sorted(timings, key=lambda t: t[1])}
            swept.update({dk.tiles_text(c): float("nan") for c in cands if dk.tiles_text(c) not in swept})  # failed
            if timings:
                best_tiles, best_ms = min(timings, key=lambda t: t[1])
            if best_ms > t_ms and saved is not None:  # keep what was there when it is still the best
                dk.TUNED[("fp8" if fp8 else "bf16", n, k)] = saved
                best_ms, best_tiles = t_ms, tiles
        try:
            if fp8:
                gemm = lambda: dk.scaled_mm(a, lin.weight, 1.0, lin.w_scale)  # noqa: E731
            else:
                gemm = lambda: torch.mm(a, lin.weight.t())  # noqa: E731
            c_ms = dk.graph_ms(gemm)
            ce_ms = dk.graph_ms(lambda: dk.epilogue(gemm(), **cub_epi)) if cub_epi is not None else c_ms
        except Exception as exc:
            print(f"    {name}: cuBLAS FAILED {type(exc).__name__}: {str(exc)[:200]}", flush=True)
            c_ms = ce_ms = float("nan")
        flop = 2 * m * n * k
        best = min(v for v in (best_ms, ce_ms, t_ms) if v == v)
        row = {"section": "layers", "model": label, "m": m, "layer": name, "n": n, "k": k, "triton_ms": t_ms,
               "sweep_ms": best_ms, "sweep_tiles": dk.tiles_text(best_tiles), "cublas_ms": c_ms, "cublas_epilogue_ms": ce_ms,
               "tflops_best": flop / best / 1e9}
        if swept:  # every candidate's time (NaN: it failed), not only the best
            row["sweep_candidates_ms"] = swept
        out.append(row)
        print(f"    {name:<12} {n:>4}x{k:<6} {t_ms:7.4f} {best_ms:7.4f} {dk.tiles_text(best_tiles):<22} {c_ms:7.4f} {ce_ms:7.4f} "
              f"{flop / best / 1e9:9.0f}", flush=True)


def kernel_profile(f, d, ids, out: list[dict], label: str) -> None:
    """torch.profiler's GPU time of every kernel of one eager forward, in launch order."""
    from torch.profiler import ProfilerActivity, profile

    with torch.inference_mode():
        f(d, ids)
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            f(d, ids)
            torch.cuda.synchronize()
    kernels = [(e.name, float(e.device_time)) for e in prof.events()
               if str(e.device_type).endswith("CUDA") and getattr(e, "device_time", 0) > 0]
    total = sum(t for _, t in kernels)
    print(f"  kernels of one eager {label} forward ({d.shape[0]} items): {total / 1e3:.3f} ms in {len(kernels)} kernels", flush=True)
    print("    " + "; ".join(f"{n[:28]} {t:.0f}" for n, t in kernels), flush=True)
    out.append({"section": "profile", "how": label, "items": d.shape[0], "kernels_us": kernels, "total_ms": total / 1e3})


def dlrm_v2_section(out: list[dict], items: int, batch: int, variants: str, layers: bool, profile_kernels: bool,
                    sustain_s: float = 0.0) -> None:
    """DLRM-v2 with MLPerf's full 26 tables (204 M rows) on the GPU: items/s and AUC of a plain
    PyTorch loop (eager bf16) and of the fused model per variant (``--dlrm-variants``), labels
    from the model itself. A forward is timed as a CUDA graph at ``batch`` and twice that; with
    ``sustain_s``, also over that many seconds of replays (:func:`sustained`)."""
    from suite.backends.kernels import fused
    from suite.datasets import synthetic
    from suite.metrics import auc

    spec = ModelSpec(name="dlrm-v2", scale="full")
    schema = spec.schema
    t0 = time.perf_counter()
    model = build(ModelSpec(name="dlrm-v2", scale="tiny")).cuda()
    g = torch.Generator(device="cuda").manual_seed(0)
    with torch.no_grad():
        for bag, table in zip(model.embeddings, schema.tables, strict=False):
            weight = torch.empty((table.rows, table.dim), device="cuda", dtype=torch.bfloat16)
            for s in range(0, table.rows, 1 << 24):
                weight[s:s + (1 << 24)].normal_(0.0, 1.0 / table.lookups ** 0.5, generator=g)
            bag.weight = torch.nn.Parameter(weight, requires_grad=False)
            bag.num_embeddings = table.rows
    dense32 = {k: v for k, v in model.named_children() if k != "embeddings"}
    dense_np, sparse_np = fused.calibration_batch(schema, items, seed=1)  # Zipf ids, as the generator's
    dense = torch.from_numpy(dense_np).cuda()
    sparse = [torch.from_numpy(s).cuda() for s in sparse_np]
    print(f"dlrm-v2 full: built in {time.perf_counter() - t0:.0f} s, {torch.cuda.memory_allocated() / 2**30:.0f} GiB", flush=True)

    def chunks(fn) -> torch.Tensor:
        with torch.inference_mode():
            return torch.cat([fn(dense[s:s + batch], [x[s:s + batch] for x in sparse]).float() for s in range(0, items, batch)])

    def teacher(d: torch.Tensor, s: list[torch.Tensor]) -> torch.Tensor:
        x = torch.cat([dense32["bottom"](d), *(bag(ids).float() for bag, ids in zip(model.embeddings, s, strict=False))], dim=1)
        return dense32["top"](dense32["cross"](x)).squeeze(1)

    logits = chunks(teacher).cpu().numpy().astype(np.float64)
    z = (logits - logits.mean()) / (logits.std() or 1.0)
    u = np.random.default_rng(1).random(items)
    temp, b = synthetic.calibrate_drawn(z, u, synthetic.target_auc("dlrm-v2"))
    labels = (u < 1 / (1 + np.exp(-(z / temp + b)))).astype(np.int8)
    ref_auc = auc(labels, logits)
    print(f"  teacher (bf16 rows, fp32 dense) AUC {ref_auc:.5f} on {items} items", flush=True)
    for mod in dense32.values():
        mod.to(torch.bfloat16)

    looked = batch * sum(schema.lookups)
    big = min(2 * batch, items)

    def graph_ms(fwd, n: int) -> float:
        d, s = dense[:n].to(torch.bfloat16), torch.cat([x[:n] for x in sparse], dim=1)
        sl = [x[:n] for x in sparse]
        arg = s if isinstance(fwd, fused.FusedDLRM) else sl
        with torch.inference_mode():
            graph = torch.cuda.CUDAGraph()
            stream = torch.cuda.Stream()
            with torch.cuda.stream(stream):
                fwd(d, arg)
            torch.cuda.synchronize()
            with torch.cuda.graph(graph, stream=stream):
                fwd(d, arg)
            ms = cuda_ms(graph.replay, 10)
        del graph
        return ms

    def measure(name: str, fwd, gate: float) -> dict:
        scores = chunks(fwd).cpu().numpy()
        a = auc(labels, scores)
        d, s = dense[:batch].to(torch.bfloat16), [x[:batch] for x in sparse]
        extra: dict = {}
        with torch.inference_mode():
            if isinstance(fwd, fused.FusedDLRM):  # the bottom MLP and the lookups alone (bf16 out)
                ids = torch.cat(s, dim=1)
                lookup_ms = cuda_ms(lambda: fwd.interaction(d, ids), 10)
                extra = {"interaction_ms": lookup_ms, "lookup_grows_s": looked / lookup_ms / 1e6,
                         "lookup_gbs": looked * fwd.tables.row_bytes / lookup_ms / 1e6, "settings": fwd.describe()}
        g1 = graph_ms(fwd, batch)
        g2 = graph_ms(fwd, big)
        row = {"section": "dlrm-v2", "how": name, "batch": batch, "graph_ms": g1, f"graph_ms_{big}": g2,
               "items_per_s": batch / g1 * 1e3, "samples_per_s": batch / g1 * 1e3 / ITEMS_PER_SAMPLE,
               f"samples_per_s_{big}": big / g2 * 1e3 / ITEMS_PER_SAMPLE,
               "auc": a, "reference_auc": ref_auc, "auc_ratio": a / ref_auc, "gate": gate, "passed": a >= gate * ref_auc,
               **extra}
        out.append(row)
        lk = f" lookups+bottom {extra['interaction_ms']:.3f} ms ({extra['lookup_gbs']:.0f} GB/s);" if extra else ""
        print(f"  {name:<44} graph {batch}: {g1:.3f} ms -> {row['samples_per_s']:7,.0f} samples/s; {big}: {g2:.3f} ms -> "
              f"{row[f'samples_per_s_{big}']:7,.0f};{lk} AUC {a:.5f} = {100 * a / ref_auc:.2f}% "
              f"({'pass' if row['passed'] else 'FAIL'} {100 * gate:.1f}%)", flush=True)
        return row

    plain = measure("plain PyTorch loop, bf16", lambda d, s: model(d.to(torch.bfloat16), s), 0.999)
    tuned: set[tuple[str, str]] = set()
    swept: set = set()
    for text in variants.split(";"):
        opts = parse_variant(text)
        try:
            t1 = time.perf_counter()
            f = fuse_variant(model, schema, opts)
            if opts.get("tune") == "1":  # as torch-cuda's tune=1 at load: tiles (and with gemm=auto, the GEMM) per layer
                f.tuned = f.tune(batch)
                print(f"  tune=1 in {time.perf_counter() - t1:.0f} s: " + ", ".join(f"{k} {v:.4f}" for k, v in f.tuned.items())
                      + (f"; gemms {f.describe().get('gemms')}" if f.gemm == "auto" else ""), flush=True)
            key = (f.dense_mode, f.residual)
            if layers and key not in tuned:
                tuned.add(key)
                try:  # the tile sweep for fp8 alone: its matmuls are the 80k goal's
                    layer_table(f, batch, out, text, sweep=True, seen=swept)
                except Exception as exc:
                    print(f"  layers FAILED {type(exc).__name__}: {exc}", flush=True)
            if profile_kernels:
                d, ids = dense[:batch].to(torch.bfloat16), torch.cat([x[:batch] for x in sparse], dim=1)
                try:
                    kernel_profile(f, d, ids, out, text)
                except Exception as exc:
                    print(f"  profile FAILED {type(exc).__name__}: {exc}", flush=True)
            row = measure(f"fused {text}", f, 0.999 if f.dense_mode == "bf16" else 0.99)
            if sustain_s > 0:
                row["sustained"] = sustained(f, schema, big, sustain_s)
            row["ratio_to_plain"] = plain["graph_ms"] / row["graph_ms"]
            row["fuse_s"] = time.perf_counter() - t1
            del f
        except Exception as exc:
            import traceback

            traceback.print_exc()
            print(f"  {text}: FAILED {type(exc).__name__}: {exc}", flush=True)
            out.append({"section": "dlrm-v2", "how": text, "error": f"{type(exc).__name__}: {exc}"})
        torch.cuda.empty_cache()
    from suite.backends.kernels import dense as dk

    out.append({"section": "tuned", "tiles": {f"{k[0]} {k[1]}x{k[2]}": dk.tiles_text(v) for k, v in dk.TUNED.items()}})
    print("  tiles now: " + ", ".join(f"{k[0]} {k[1]}x{k[2]} {dk.tiles_text(v)}" for k, v in dk.TUNED.items()), flush=True)


if __name__ == "__main__":
    main()
