"""torch-cuda in Server with the declared GPU batching: capacity against Offline, through LoadGen.

For each model and precision: the backend loads once (graphs for every bucket captured at load), an
Offline run with the declared Offline batcher gives capacity, what ``--target-qps auto`` would pick
for Server is computed from its probe (full batches of the declared Server batch size), and Server
runs at fractions of Offline give p99 (p95 for the DeepRecSys models' SLA), validity, and the
batches the harness formed. dlrm-v2 uses uniform extra multi-hot ids (``cuda_host.uniform_items``);
the DeepRecSys models features only (``gpu.features_only``). One JSON line per run is appended to
``--out``.

``--placement devices`` (the default) measures what ``suite run`` gives a user: the backend runs in
one spawned worker process per GPU (``--devices all``, the default for a GPU backend in Offline
and Server), built as the runner builds it, and the driver runs LoadGen, the batcher and the round
trip; ``--placement in-process`` runs the backend in the driver (``--devices in-process``), as the
numbers before 2026-12-01 were measured. ``--backend null --variants batch_us=100,item_ns=30``
(a modelled device that declares torch-cuda's batching) checks the script on a machine without a
GPU: a CPU backend is placed in one worker process running ``lanes`` batches at once (4), as a
GPU worker does.

    python3 benchmarks/gpu_server.py --models dlrm-v2 --scale 4000000 --precisions fp8,bf16 --fractions 0.7,0.8,0.9
    python3 benchmarks/gpu_server.py --models dlrm-rmc1,ncf --precisions bf16 --fractions 0.5,0.8 --seconds 3
    python3 benchmarks/gpu_server.py --precisions fp8 --variants 'staging=dma;staging=copy;staging=mapped;rows=bf16,tune=1'
    .venv/bin/python benchmarks/gpu_server.py --backend null --models ncf,wnd --scale tiny --rows 8192 \
        --precisions bf16 --variants batch_us=100,item_ns=30 --fractions 0.5 --seconds 1 --offline-seconds 1

``--variants`` runs each precision once per set of torch-cuda options (``;`` between sets, ``,``
within one); with ``tune=1`` the tile shapes it picked are printed, to copy into
``suite.backends.kernels.dense.TUNED``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from common import loadgen_run
from cuda_host import GpuBusy, uniform_library
from gil_watch import GilWatch
from gpu import features_only

from suite.backends import Backend, get_backend
from suite.backends.base import BackendConfig
from suite.config import Mode, RunConfig, Scenario, resolve
from suite.models import ModelSpec
from suite.runner import calibrated, warm_up


def make_backend(name: str, spec: ModelSpec, precision: str, options: tuple[tuple[str, str], ...], placement: str) -> Backend:
    """The backend as ``suite run`` builds it for a GPU backend in Offline and Server: on one
    worker process per GPU (``ProcessPlacement.place`` of a config with ``--devices all``); a CPU
    backend in one worker process with as many lanes; or, ``in-process``, in this process."""
    cls = get_backend(name)
    config = BackendConfig(model=spec, precision=precision, options=options)
    if placement == "in-process":
        return cls(config)
    from suite.placement.local import ProcessPlacement

    if cls.device_kind == "cuda":
        run = RunConfig(model=spec, backend=name, scenario=Scenario.SERVER, profile="smoke", precision=precision,
                        backend_options=options, devices="all")
        backend, _, _ = ProcessPlacement.place(run, cls, len(os.sched_getaffinity(0)))
        return backend
    from suite.placement.backend import PlacedBackend
    from suite.placement.base import WorkerSpec

    lanes = int(config.option("lanes", "4"))  # the null backend's modelled device declares 4
    worker = WorkerSpec(name="worker 0 (GPU-like)", backend=name, config=config, concurrency=lanes)
    return PlacedBackend(name, config, ProcessPlacement(), [worker])


def backend_extra(backend: Backend) -> dict[str, Any]:
    """The backend's ``info().extra`` now: a placed backend's asked of its worker 0 (the record's
    copy is the one taken at load, before any batch ran)."""
    placement = getattr(backend, "placement", None)
    if placement is not None:
        extra: dict[str, Any] = placement.ask(0, "info").extra
        return extra
    return dict(backend.info().extra)


@contextlib.contextmanager
def gpu_busy() -> Iterator[Any]:
    """nvidia-smi's GPU busy % over the block (nan without nvidia-smi: a CPU check)."""
    if shutil.which("nvidia-smi") is None:
        yield argparse.Namespace(percent=float("nan"))
        return
    with GpuBusy() as busy:
        yield busy


def free_device_memory(placement: str) -> None:
    """After an in-process backend closed, give its cached device memory back (a placed backend's
    went with its worker process; the driver never touched the GPU)."""
    if placement != "in-process":
        return
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--backend", default="torch-cuda", help="a registry name (null or torch-cpu: a CPU check)")
    ap.add_argument("--placement", choices=["devices", "in-process"], default="devices",
                    help="devices: a worker process per GPU, as suite run places it (the default); in-process: in this process")
    ap.add_argument("--models", default="dlrm-v2")
    ap.add_argument("--scale", default="4000000", help="row cap or scale name")
    ap.add_argument("--rows", type=int, default=131072)
    ap.add_argument("--precisions", default="fp8,bf16")
    ap.add_argument("--fractions", default="0.7,0.8,0.9")
    ap.add_argument("--seconds", type=float, default=6.0, help="Server run length")
    ap.add_argument("--offline-seconds", type=float, default=4.0)
    ap.add_argument("--no-auto", action="store_true", help="skip the Server run at the probe's auto target")
    ap.add_argument("--variants", default="", help="torch-cuda option sets: 'k=v,k=v;k=v' (default: none)")
    ap.add_argument("--out", type=Path, default=Path("gpu_server.jsonl"))
    ap.add_argument("--gil-watch", type=Path, default=None,
                    help="write every thread's stack here whenever the driver's GIL is out of reach for 40 ms in Server (gil_watch.py)")
    args = ap.parse_args()
    for model in args.models.split(","):
        spec = ModelSpec(name=model, scale=args.scale)
        server = resolve(RunConfig(model=spec, backend=args.backend, scenario=Scenario.SERVER, profile="smoke"))
        if model == "dlrm-v2":
            library, _ = uniform_library(spec, args.rows)
        else:
            library = features_only(spec, args.rows, server.query_size)
        q_items = float(library.sizes.mean())
        runs = [(p, v) for p in args.precisions.split(",") for v in args.variants.split(";")]
        for precision, variant in runs:
            if precision == "fp8" and not model.startswith("dlrm"):
                continue
            t0 = time.perf_counter()
            options = tuple(tuple(kv.split("=", 1)) for kv in variant.split(",") if kv)
            backend = make_backend(args.backend, spec, precision, options, args.placement)
            name = args.backend if args.placement == "devices" else None  # a placed backend's record names the inner one
            try:
                backend.load()
                backend.attach_items(library.items)
                load_s = time.perf_counter() - t0
                off_d = backend.batch_defaults("Offline", server.target_latency_ns)
                srv_d = backend.batch_defaults("Server", server.target_latency_ns)
                common = dict(min_duration_ms=int(args.offline_seconds * 1000), performance_sample_count=0, mode=Mode.PERFORMANCE)
                off = dataclasses.replace(server, scenario=Scenario.OFFLINE, target_qps=1e6, min_query_count=1,
                                          max_batch_items=off_d.max_batch_items, batch_timeout_us=0, **common)
                # Offline's expected QPS from a 1-s probe, as --target-qps auto does.
                wu = warm_up(backend, library, off, off_d.workers, probe_s=1.0)
                off, _ = calibrated(dataclasses.replace(off, target_qps_source="auto"), wu, q_items)
                with gpu_busy() as off_busy:
                    outcome, d = loadgen_run(library, backend, off, workers=off_d.workers, backend_name=name)
                cap = float(d.get("result_samples_per_second") or 0)
                off_timeline = backend_extra(backend).get("gpu_timeline")  # with --variants timeline=1
                srv = dataclasses.replace(server, max_batch_items=srv_d.max_batch_items, batch_timeout_us=srv_d.batch_timeout_us,
                                          min_duration_ms=int(args.seconds * 1000), min_query_count=256, performance_sample_count=0,
                                          mode=Mode.PERFORMANCE, target_qps_source="auto")
                wu = warm_up(backend, library, srv, srv_d.workers, probe_s=1.0, full_batches=True)
                auto, rec = calibrated(srv, wu, q_items, full_batches=True)
                info = backend_extra(backend)
                fused = info.get("fused") or {}
                head = {"model": model, "scale": spec.scale, "precision": precision, "variant": variant,
                        "backend": args.backend, "placement": args.placement, "staging": info.get("staging"),
                        "staging_note": info.get("staging_note"), "dma_calls": info.get("dma_calls"), "tiles": fused.get("tiles"), "tuned_ms": fused.get("tuned_ms"),
                        "load_s": round(load_s, 1),
                        "offline_qps": cap, "offline_items_per_s": round(outcome.completed_items / max(outcome.duration_s, 1e-9)),
                        "server_batch": dataclasses.asdict(srv_d), "auto_server_qps": auto.target_qps,
                        "bucket_ms": info.get("bucket_ms"), "capture_s": info.get("capture_s"),
                        "offline_gpu_busy_pct": round(off_busy.percent, 1), "offline_gpu_timeline": off_timeline}
                print(f"{model:<10} {precision:<5} [{variant}] {args.placement} staging {info.get('staging')} {info.get('dma_calls') or ''} {info.get('staging_note') or ''} sync {info.get('sync')}  "
                      f"bucket 16384: {(info.get('bucket_ms') or {}).get('16384')} ms  tiles {fused.get('tiles')}", flush=True)
                if "tune=1" in variant:
                    from suite.backends.kernels import dense

                    print("  TUNED = " + repr(dense.TUNED), flush=True)
                print(f"{model:<10} {precision:<5} load {load_s:5.1f} s  Offline {cap:10,.0f} q/s  Server batch "
                      f"{srv_d.max_batch_items} wait {srv_d.batch_timeout_us} us  auto {auto.target_qps:,.0f} q/s "
                      f"({auto.target_qps / max(cap, 1e-9):.2f}x)  GPU busy {off_busy.percent:.0f}%", flush=True)
                if off_timeline:
                    print(f"  Offline GPU timeline: {off_timeline}", flush=True)
                pct = server.target_latency_percentile
                key = f"result_{100 * pct:.2f}_percentile_latency_ns"
                targets = [(f, f * cap) for f in (float(x) for x in args.fractions.split(","))]
                targets += [] if args.no_auto else [("auto", auto.target_qps)]
                for frac, qps in targets:
                    s = dataclasses.replace(srv, target_qps=round(qps, 1), target_qps_source="cli")
                    watch = GilWatch(args.gil_watch) if args.gil_watch else contextlib.nullcontext()
                    with gpu_busy() as busy, watch:
                        outcome, d = loadgen_run(library, backend, s, workers=srv_d.workers, backend_name=name)
                    lat = float(d.get(key) or 0)
                    valid = d.get("result_validity") == "VALID" and not outcome.errors
                    mean_batch = outcome.completed_items / max(outcome.batches, 1)
                    extra = backend_extra(backend)  # a placed backend's is a round trip to its worker
                    row = {**head, "fraction": frac, "target_qps": qps, "qps": float(d.get("result_completed_samples_per_sec") or 0),
                           "latency_ms": lat / 1e6, "percentile": pct, "sla_ms": server.target_latency_ns / 1e6,
                           "valid": valid, "mean_batch_items": round(mean_batch), "errors": outcome.errors[:1],
                           "host_us_per_batch": extra.get("host_us_per_batch"),
                           "predict_us_per_batch": extra.get("predict_us_per_batch"),
                           "staged_batches": extra.get("staged_batches"),
                           "sut_p99_ms": outcome.sut_latency_s(0.99) * 1e3, "issue_gap_max_ms": round(outcome.issue_gap_max_s * 1e3, 2),
                           "issue_stalls": outcome.issue_stalls_ms(),
                           "issue_calls": outcome.issue_calls, "driver_gc": outcome.gc.summary(),
                           # to line the stalls up with pause_probe.py's wall-clock gaps
                           "started_unix": round(time.time() - (time.perf_counter() - outcome.started), 3),
                           "p50_ms": float(d.get("result_50.00_percentile_latency_ns") or 0) / 1e6,
                           "latency_ms_by_percentile": {p: round(float(d.get(f"result_{p}_percentile_latency_ns") or 0) / 1e6, 2)
                                                        for p in ("90.00", "95.00", "97.00", "99.00", "99.90")},
                           "max_latency_ms": float(d.get("result_max_latency_ns") or 0) / 1e6,
                           "gpu_busy_pct": round(busy.percent, 1), "gpu_timeline": extra.get("gpu_timeline"), "seconds": args.seconds}
                    print(f"  Server {frac!s:>4} {qps:10,.0f} q/s  p{100 * pct:.0f} {lat / 1e6:7.2f} ms (SLA "
                          f"{server.target_latency_ns / 1e6:.0f})  {'VALID' if valid else 'INVALID'}  mean batch {mean_batch:7,.0f}  p50 {row['p50_ms']:.2f} ms  "
                          f"host {row['host_us_per_batch']} us/batch  GPU busy {busy.percent:.0f}%",
                          flush=True)
                    print(f"    latency ms by percentile {row['latency_ms_by_percentile']}, max {row['max_latency_ms']:.1f}; "
                          f"{outcome.issue_calls:,} issue calls for {outcome.completed_queries:,} queries; batches staged so far "
                          f"{row['staged_batches']}; predict us a batch {row['predict_us_per_batch']}", flush=True)
                    if row["gpu_timeline"]:
                        print(f"    GPU timeline: {row['gpu_timeline']}", flush=True)
                    if isinstance(watch, GilWatch):
                        row["gil_gaps"] = [[round(at, 1), round(ms)] for at, ms in watch.gaps]
                        print(f"    GIL out of reach >= 40 ms: {row['gil_gaps']}", flush=True)
                    print(f"    the driver's garbage collections: {row['driver_gc']}", flush=True)
                    if outcome.issue_stalls:
                        print("    LoadGen issue stalls [s into the run, ms]: " + " ".join(f"[{at:.1f}, {ms:.0f}]" for at, ms in row["issue_stalls"]), flush=True)
                    with args.out.open("a") as f:
                        f.write(json.dumps(row, default=str) + "\n")
            except Exception as exc:
                print(f"{model:<10} {precision:<5} FAILED: {type(exc).__name__}: {exc}", flush=True)
                with args.out.open("a") as f:
                    f.write(json.dumps({"model": model, "precision": precision, "error": f"{type(exc).__name__}: {exc}"}) + "\n")
            finally:
                backend.close()
                free_device_memory(args.placement)


if __name__ == "__main__":
    main()
