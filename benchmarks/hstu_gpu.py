"""dlrm-v3 on one GPU: the fused HSTU attention's tile shapes, and the whole forward per batch size.

Builds dlrm-v3 at ``--scale`` (the item table's row cap; above 100,000 the requests are MLPerf's
size: jagged histories of about 6,750 events, 2,048 candidates) in ``--precision`` on the GPU and
draws ``--requests`` streaming requests as the dataset draws them (features only, no teacher
labels: this measures speed; the tests check each path's numbers). Then, one line each:

* ``--tiles``: the attention kernel alone on the first ``--kernel-requests`` requests' real
  lengths (random q, k, v, 4 heads of 128), every tile shape of
  :data:`suite.backends.kernels.hstu.CANDIDATES`: ms and TFLOP/s (the FLOPs the mask keeps, a
  multiply-add two), the fastest kept for what follows; then the last layer's form (candidate
  rows alone) with that shape; with ``--fp8``, the attention with fp8 e4m3 products, quantization
  included and timed apart, for its launch shape, bf16's pick and two more (the candidate rows
  alone with the launch shape), and how far the fp8 output is from the bf16 one;
* the fused model, eagerly, on batches of ``--batch`` requests: ms per batch and requests/s,
  back to back for ``--seconds`` (the host's share included: this is what a lane runs), twice:
  the model counting each request on the GPU and reading the counts back (``counts: device``), and
  given the counts from the host as torch-cuda gives them by default (``counts: host``: no sync);
* ``--plain``: the same with the plain PyTorch attention (slow and memory-hungry at MLPerf's size);
* ``--profile``: for every ``--batch`` and both ways of counting, the GPU time of three fused
  batches (torch's profiler), the kernels launched and the host's time to launch a batch (the
  forward call's return, the GPU idle before it), against the wall time a batch took above: where
  the GPU time is a small part of the wall time, the batch is bound by the host, not the device (a
  batch of one request took 4-7 ms on the H200 where eight took 12); then, with the counts sent
  from the host, the largest kernels of every batch size (15 of the largest, 5 of the others), as
  ms per batch;
* ``--backend``: torch-cuda itself, one lane, batches of the drawn requests back to back as a
  lane runs them (staged rows to scores on the host): replaying the jagged CUDA graphs captured at
  load (the default) against eager (``cuda_graphs=0``), ms per batch and requests/s, the graphs'
  load time, and the largest difference of their scores.

    python3 benchmarks/hstu_gpu.py --scale 1000000 --tiles --batch 1 4 8 11 [--plain] [--backend]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import numpy as np
import torch
from common import cuda_ms

from suite.backends.kernels import hstu
from suite.datasets import streaming
from suite.datasets.batch import Batch
from suite.models import ModelSpec, build
from suite.models.dlrm_v3 import Extent, request_counts

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def forward(model: torch.nn.Module, dense: torch.Tensor, sparse: list[torch.Tensor], lo: int, batch: int,
            counts: np.ndarray | None) -> torch.Tensor:
    """One batch of requests ``lo:lo + batch``. ``counts`` (2, N): each request's counts, sent from
    the host as torch-cuda sends them (``--option counts=host``, the default); None: the model
    counts them on the GPU and reads them back (``counts=device``)."""
    args = (dense[lo : lo + batch], [s[lo : lo + batch] for s in sparse])
    if counts is None:
        return model(*args)
    host = torch.from_numpy(np.ascontiguousarray(counts[:, lo : lo + batch])).pin_memory()
    return model(*args, tokens=model.tokens(host.to("cuda", non_blocking=True), Extent.of(host)))


def back_to_back(call: Callable[[int], object], n: int, batch: int, seconds: float) -> tuple[float, float]:
    """(requests per second, ms per batch) over ``seconds`` of back-to-back ``call(lo)``, each a
    batch of requests ``lo:lo + batch`` (after one warm-up batch), cycling through ``n`` requests."""
    call(0)
    torch.cuda.synchronize()
    done, batches, start = 0, 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        call(done % (n - batch + 1))
        done += batch
        batches += 1
    torch.cuda.synchronize()
    wall = time.perf_counter() - start
    return done / wall, 1000 * wall / batches


def timed(model: torch.nn.Module, dense: torch.Tensor, sparse: list[torch.Tensor], batch: int, seconds: float,
          counts: np.ndarray | None = None) -> tuple[float, float]:
    """:func:`back_to_back` batches of the model itself."""
    with torch.inference_mode():
        return back_to_back(lambda lo: forward(model, dense, sparse, lo, batch, counts), dense.shape[0], batch, seconds)


def host_ms(model: torch.nn.Module, dense: torch.Tensor, sparse: list[torch.Tensor], batch: int, counts: np.ndarray | None,
            calls: int = 5) -> float:
    """Milliseconds for the forward call to return, the GPU idle before each call: the host's
    launches (with counts read back, the wait for them too)."""
    spent = 0.0
    with torch.inference_mode():
        for _ in range(calls):
            torch.cuda.synchronize()
            started = time.perf_counter()
            forward(model, dense, sparse, 0, batch, counts)
            spent += time.perf_counter() - started
        torch.cuda.synchronize()
    return 1000 * spent / calls


def fp8_lines(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, jag, last_fp8, flops: float, cand_flops: float,
              shape: dict) -> None:
    """The fp8 attention (``fp8=True``) with its launch shape (hstu.FP8_TILE), then with bf16's
    fastest and hstu.FP8_CANDIDATES: every row (the quantization timed apart) and, for the launch
    shape, the candidate rows alone (``last_fp8()``), and the largest difference from bf16's output."""
    want = hstu.hstu_attention(q, k, v, jag.offsets, jag.history, jag.max_len, 0.1, jag.max_len)
    quant_ms = cuda_ms(lambda: hstu.quantize_qkv(q, k, v, jag.offsets))
    for tile in dict.fromkeys((hstu.FP8_TILE, hstu.TILE, *hstu.FP8_CANDIDATES)):
        try:
            got = hstu.hstu_attention(q, k, v, jag.offsets, jag.history, jag.max_len, 0.1, jag.max_len, fp8=True, tile=tile)
            off = float((got - want).abs().max() / want.abs().max())
            with_quant = cuda_ms(lambda tile=tile: hstu.hstu_attention(q, k, v, jag.offsets, jag.history, jag.max_len, 0.1,
                                                                        jag.max_len, fp8=True, tile=tile))
        except Exception as exc:  # a shape that does not compile or launch here: said, and the rest go on
            print(json.dumps({"kernel": "hstu_attention fp8", "tile": tile.text(), "failed": f"{type(exc).__name__}: {exc}"[:300]}),
                  flush=True)
            continue
        line = {"kernel": "hstu_attention fp8", "tile": tile.text(), "ms_with_quantize": round(with_quant, 3),
                "quantize_ms": round(quant_ms, 3), "tflops_kernel": round(flops / max(with_quant - quant_ms, 1e-6) / 1e9, 1),
                "max_off_vs_bf16": round(off, 4), **shape}
        if tile == hstu.FP8_TILE:
            last = cuda_ms(last_fp8)
            line.update({"candidates_only_ms": round(last, 3), "candidates_only_tflops": round(cand_flops / last / 1e9, 1)})
        print(json.dumps(line), flush=True)


def sweep_tiles(hist: np.ndarray, cand: np.ndarray, fp8: bool = False, gluon: bool = False,
                tiles: tuple[hstu.Tile, ...] = hstu.CANDIDATES, qk_fp8: bool = False) -> None:
    """One line per tile shape: the kernel's ms and TFLOP/s on these requests; then the fastest
    shape on the candidate rows alone (the last layer's form); ``fp8``: then :func:`fp8_lines`;
    ``gluon``: then :func:`gluon_lines`."""
    h, c = torch.from_numpy(hist.astype(np.int64)), torch.from_numpy(cand.astype(np.int64))
    flops = hstu.attention_flops(h, c, heads=4, dqk=128, dv=128)
    shape = {"requests": len(hist), "history_mean": round(float(hist.mean())), "candidates_mean": round(float(cand.mean()))}
    rejected: list[str] = []
    for tile, ms in hstu.tune(h, c, calls=5, rejected=rejected, tiles=tiles):
        print(json.dumps({"kernel": "hstu_attention", "tile": tile.text(), "ms": round(ms, 3),
                          "tflops": round(flops / ms / 1e9, 1), **shape}), flush=True)
    for why in rejected:
        print(json.dumps({"kernel": "hstu_attention", "rejected": why}), flush=True)
    print(json.dumps({"kernel": "hstu_attention", "fastest": hstu.TILE.text()}), flush=True)
    from suite.models.dlrm_v3 import Jagged

    jag = Jagged.of(h.cuda(), c.cuda(), int((1 + h + c).max()))
    total, rows = int(jag.offsets[-1]), jag.candidate_rows()
    q, k, v = (torch.randn(total, 4, 128, device="cuda").to(torch.bfloat16) for _ in range(3))
    qc = q[rows].contiguous()
    cand_flops = float((c.double() * (h.double() + 2)).sum()) * 4 * 2 * 256

    def last(fp8: bool = False) -> torch.Tensor:
        return hstu.hstu_attention(qc, k, v, jag.offsets, jag.history, jag.max_len, 0.1, jag.max_len,
                                   q_offsets=jag.candidate_offsets, max_queries=jag.max_candidates, fp8=fp8)

    ms = cuda_ms(last)
    print(json.dumps({"kernel": "hstu_attention candidates only", "tile": hstu.TILE.text(), "ms": round(ms, 3),
                      "tflops": round(cand_flops / ms / 1e9, 1), **shape}), flush=True)
    if fp8:
        fp8_lines(q, k, v, jag, lambda: last(fp8=True), flops, cand_flops, shape)
    if gluon:
        gluon_lines(q, k, v, qc, jag, flops, cand_flops, shape, qk_fp8=qk_fp8)


def gluon_lines(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, qc: torch.Tensor, jag, flops: float,
                cand_flops: float, shape: dict, qk_fp8: bool = False) -> None:
    """The Gluon kernel (suite.backends.kernels.hstu_wg) in each of its launch shapes, every row and
    the candidate rows alone: ms, TFLOP/s, and the largest distance from the Triton kernel's output
    relative to its largest output; ``qk_fp8``: then :func:`qk8_lines`."""
    from suite.backends.kernels import hstu_wg

    want = hstu.hstu_attention(q, k, v, jag.offsets, jag.history, jag.max_len, 0.1, jag.max_len)
    want_c = hstu.hstu_attention(qc, k, v, jag.offsets, jag.history, jag.max_len, 0.1, jag.max_len,
                                 q_offsets=jag.candidate_offsets, max_queries=jag.max_candidates)
    for tile in hstu_wg.WG_CANDIDATES:
        def whole(tile: hstu_wg.WgTile = tile) -> torch.Tensor:
            return hstu_wg.hstu_attention_wg(q, k, v, jag.offsets, jag.history, jag.max_len, 0.1, jag.max_len, tile=tile)

        def alone(tile: hstu_wg.WgTile = tile) -> torch.Tensor:
            return hstu_wg.hstu_attention_wg(qc, k, v, jag.offsets, jag.history, jag.max_candidates, 0.1, jag.max_len,
                                             q_offsets=jag.candidate_offsets, tile=tile)

        try:
            off = float((whole() - want).abs().max()) / float(want.abs().max())
            off_c = float((alone() - want_c).abs().max()) / float(want_c.abs().max())
            ms, ms_c = cuda_ms(whole), cuda_ms(alone)
        except Exception as exc:  # a shape that does not compile or fit here: say so, go on
            print(json.dumps({"kernel": "hstu_attention_wg", "tile": tile.text(), "error": f"{type(exc).__name__}: {str(exc)[:300]}"}), flush=True)
            continue
        print(json.dumps({"kernel": "hstu_attention_wg", "tile": tile.text(), "ms": round(ms, 3), "tflops": round(flops / ms / 1e9, 1),
                          "off": round(off, 5), "candidates_ms": round(ms_c, 3), "candidates_tflops": round(cand_flops / ms_c / 1e9, 1),
                          "candidates_off": round(off_c, 5), **shape}), flush=True)
    if qk_fp8:
        qk8_lines(q, k, v, qc, jag, flops, cand_flops, shape, want, want_c)


def qk8_lines(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, qc: torch.Tensor, jag, flops: float, cand_flops: float,
              shape: dict, want: torch.Tensor, want_c: torch.Tensor) -> None:
    """The Gluon kernel with q and k in fp8 (``qk_fp8``) in its fp8 shapes (``hstu_wg.FP8_CANDIDATES``): ms with the
    quantizing of q and k (timed apart too), the kernel's TFLOP/s without it, every row and the
    candidate rows alone, and the largest distance from the bf16 Triton kernel's output."""
    from suite.backends.kernels import hstu_wg

    quant = cuda_ms(lambda: (hstu.quantize_heads(q), hstu.quantize_spans(k, jag.offsets, jag.max_len)))
    quant_c = cuda_ms(lambda: (hstu.quantize_heads(qc), hstu.quantize_spans(k, jag.offsets, jag.max_len)))
    for tile in hstu_wg.FP8_CANDIDATES:
        def whole(tile: hstu_wg.WgTile = tile) -> torch.Tensor:
            return hstu_wg.hstu_attention_wg(q, k, v, jag.offsets, jag.history, jag.max_len, 0.1, jag.max_len, tile=tile,
                                             qk_fp8=True)

        def alone(tile: hstu_wg.WgTile = tile) -> torch.Tensor:
            return hstu_wg.hstu_attention_wg(qc, k, v, jag.offsets, jag.history, jag.max_candidates, 0.1, jag.max_len,
                                             q_offsets=jag.candidate_offsets, tile=tile, qk_fp8=True)

        try:
            off = float((whole() - want).abs().max()) / float(want.abs().max())
            off_c = float((alone() - want_c).abs().max()) / float(want_c.abs().max())
            ms, ms_c = cuda_ms(whole), cuda_ms(alone)
        except Exception as exc:  # a shape that does not compile or fit here: say so, go on
            print(json.dumps({"kernel": "hstu_attention_wg qk_fp8", "tile": tile.text(), "error": f"{type(exc).__name__}: {str(exc)[:300]}"}), flush=True)
            continue
        print(json.dumps({"kernel": "hstu_attention_wg qk_fp8", "tile": tile.text(), "ms_with_quantize": round(ms, 3),
                          "quantize_ms": round(quant, 3), "tflops_kernel": round(flops / max(ms - quant, 1e-6) / 1e9, 1),
                          "off_vs_bf16": round(off, 5), "candidates_ms_with_quantize": round(ms_c, 3),
                          "candidates_quantize_ms": round(quant_c, 3), "candidates_off": round(off_c, 5), **shape}), flush=True)


def profile(model: torch.nn.Module, dense: torch.Tensor, sparse: list[torch.Tensor], batch: int, top: int = 15,
            wall_ms: float | None = None, counts: np.ndarray | None = None) -> None:
    """The GPU time and kernel launches of a batch over three batches, with ``wall_ms`` (the batch's
    wall time measured back to back) and the host's time to launch one beside them; then one line
    per kernel, the ``top`` largest by GPU time: ms per batch, share."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    launch_ms = host_ms(model, dense, sparse, batch, counts)
    with torch.inference_mode():
        forward(model, dense, sparse, 0, batch, counts)
        torch.cuda.synchronize()
        with torch_profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(3):
                forward(model, dense, sparse, 0, batch, counts)
            torch.cuda.synchronize()
    rows = []
    for e in prof.key_averages():
        us = getattr(e, "self_device_time_total", None)
        if us is None:
            us = getattr(e, "self_cuda_time_total", 0.0)
        if us > 0:
            rows.append((float(us), e.key, e.count))
    total = sum(us for us, _, _ in rows) or 1.0
    line: dict[str, object] = {"profile_batch": batch, "counts": "device" if counts is None else "host",
                               "gpu_ms_per_batch": round(total / 3000, 3), "host_ms_per_batch": round(launch_ms, 2),
                               "launches_per_batch": sum(count for _, _, count in rows) // 3}
    if wall_ms is not None:
        line.update(wall_ms_per_batch=round(wall_ms, 2), gpu_share_of_wall=round(total / 3000 / wall_ms, 2))
    print(json.dumps(line), flush=True)
    for us, name, count in sorted(rows, reverse=True)[:top]:
        print(json.dumps({"batch": batch, "kernel": name[:90], "ms_per_batch": round(us / 3000, 3), "share": round(us / total, 3),
                          "launches_per_batch": count // 3}), flush=True)


def backend_pass(spec: ModelSpec, precision: str, items: Batch, sizes: list[int], seconds: float) -> None:
    """torch-cuda, one lane: jagged graphs against eager on the same batches (``--backend``)."""
    from suite.backends.base import BackendConfig
    from suite.backends.torch_cuda import TorchCUDABackend

    made = {}
    for graphs in ("1", "0"):
        backend = TorchCUDABackend(BackendConfig(model=spec, precision=precision, options=(("cuda_graphs", graphs), ("lanes", "1"))))
        started = time.perf_counter()
        backend.load()
        made[graphs] = backend, time.perf_counter() - started
        backend.attach_items(items)
    n = len(items)
    for size in sizes:
        scores = {}
        for graphs, (backend, load_s) in made.items():
            def one(lo: int) -> np.ndarray:
                return backend.predict(Batch.of_spans(items, [(lo, lo + size)]))

            rate, ms = back_to_back(one, n, size, seconds)
            scores[graphs] = np.concatenate([one(lo) for lo in range(0, n - size + 1, size)])
            extra = backend.info().extra
            print(json.dumps({"path": "torch-cuda", "cuda_graphs": graphs == "1", "batch": size,
                              "ms_per_batch": round(ms, 2), "requests_per_s": round(rate, 1),
                              "load_s": round(load_s, 1), "capture_s": extra["capture_s"],
                              **{k: extra[k] for k in ("jagged_graphs", "graph_error", "bucket_ms") if k in extra},
                              "memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 1)}), flush=True)
        print(json.dumps({"batch": size, "graph_vs_eager_max_abs": float(np.abs(scores["1"] - scores["0"]).max()),
                          "requests_compared": len(scores["1"])}), flush=True)
    for backend, _ in made.values():
        backend.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", default="1000000")
    parser.add_argument("--precision", default="bf16", choices=sorted(DTYPES))
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--kernel-requests", type=int, default=8)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 4, 8, 11])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--tiles", action="store_true", help="time the attention kernel's tile shapes first")
    parser.add_argument("--fp8", action="store_true", help="with --tiles: the attention with fp8 e4m3 products too")
    parser.add_argument("--tile-set", default="all", choices=["all", "default"],
                        help="with --tiles: every shape of hstu.CANDIDATES, or the default TILE alone")
    parser.add_argument("--gluon", action="store_true", help="the Gluon kernel too: its shapes with --tiles, the forward with it last (and profiled so, with --profile)")
    parser.add_argument("--qk-fp8", action="store_true", help="with --gluon: the Gluon kernel with q and k in fp8 too "
                        "(its shapes with --tiles; the forward with it last, and profiled so)")
    parser.add_argument("--plain", action="store_true", help="time the plain PyTorch attention too")
    parser.add_argument("--profile", action="store_true", help="GPU time by kernel of the fused forward")
    parser.add_argument("--kept-fp32", default="tf32", choices=["tf32", "fp32"],
                        help="the matmuls of the parts a 16-bit build keeps in fp32, as torch-cuda's option (default tf32)")
    parser.add_argument("--top", type=int, default=15, help="with --profile: kernels listed for the largest batch")
    parser.add_argument("--backend", action="store_true", help="torch-cuda's jagged graphs against eager, one lane")
    parser.add_argument("--backend-only", action="store_true", help="--backend alone")
    args = parser.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = args.kept_fp32 == "tf32"
    spec = ModelSpec(name="dlrm-v3", scale=args.scale)
    schema = spec.schema
    batch = streaming.features(spec.config, spec, args.requests, np.random.default_rng(0))  # type: ignore[arg-type]  # dlrm-v3's config
    hist, cand = streaming.request_lengths(batch.dense, schema.dense - schema.tasks)
    if args.backend or args.backend_only:
        backend_pass(spec, args.precision, batch, args.batch, args.seconds)
        if args.backend_only:
            return
    if args.tiles:
        sweep_tiles(hist[: args.kernel_requests], cand[: args.kernel_requests], fp8=args.fp8, gluon=args.gluon,
                    tiles=hstu.CANDIDATES if args.tile_set == "all" else (hstu.TILE,), qk_fp8=args.qk_fp8)
    started = time.perf_counter()
    model = build(spec, device="cuda", dtype=DTYPES[args.precision])
    load_s = time.perf_counter() - started
    dense = torch.from_numpy(batch.dense).cuda()
    sparse = [torch.from_numpy(s).cuda() for s in batch.sparse]
    base = {"scale": args.scale, "precision": args.precision, "history_mean": round(float(hist.mean())),
            "candidates_mean": round(float(cand.mean())), "load_s": round(load_s, 1), "gpu": torch.cuda.get_device_name()}
    counts = request_counts(batch.dense, schema.dense - schema.tasks)
    plain = [("plain", None)] if args.plain else []
    fused_ms: dict[tuple[int, str], float] = {}
    gluon = [("gluon", counts)] if args.gluon else []
    gluon += [("gluon-qk8", counts)] if args.gluon and args.qk_fp8 else []
    for path, sent in [*plain, ("fused", None), ("fused", counts), *gluon]:
        if path == "fused" and not fused_ms:  # after the plain path: it patches the model's layers in place
            hstu.use_fused_attention(model)
        if path.startswith("gluon"):  # last: the fused model's attention through suite.backends.kernels.hstu_wg
            hstu.use_fused_attention(model, gluon=True, qk_fp8=path == "gluon-qk8")
        where = "device" if sent is None else "host"
        for b in args.batch:
            rate, ms = timed(model, dense, sparse, b, args.seconds, sent)
            if path == "fused":
                fused_ms[b, where] = ms
            print(json.dumps({**base, "path": path, "counts": where, "tile": hstu.TILE.text() if path == "fused" else None,
                              "batch": b, "ms_per_batch": round(ms, 2), "requests_per_s": round(rate, 1),
                              "memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 1)}), flush=True)
    if args.profile:
        for b in sorted(args.batch):
            for sent in (None, counts):
                where = "device" if sent is None else "host"
                # The largest kernels of every size (of the largest, more): where a small batch's
                # GPU time goes against its share of a large one's (a grid of few requests, say).
                top = 0 if sent is None else args.top if b == max(args.batch) else 5
                profile(model, dense, sparse, b, top=top,
                        wall_ms=fused_ms.get((b, where)), counts=sent)


if __name__ == "__main__":
    main()
