"""torch-cuda in Server with the declared GPU batching: capacity against Offline, through LoadGen.

For each model and precision: the backend loads once (graphs for every bucket captured at load), an
Offline run with the declared Offline batcher gives capacity, what ``--target-qps auto`` would pick
for Server is computed from its probe (full batches of the declared Server batch size), and Server
runs at fractions of Offline give p99 (p95 for the DeepRecSys models' SLA), validity, and the
batches the harness formed. dlrm-v2 uses uniform extra multi-hot ids (``cuda_host.uniform_items``);
the DeepRecSys models features only (``gpu.features_only``). One JSON line per run is appended to
``--out``.

    python3 benchmarks/gpu_server.py --models dlrm-v2 --scale 4000000 --precisions fp8,bf16 --fractions 0.7,0.8,0.9
    python3 benchmarks/gpu_server.py --models dlrm-rmc1,ncf --precisions bf16 --fractions 0.5,0.8 --seconds 3
    python3 benchmarks/gpu_server.py --precisions fp8 --variants 'staging=copy;staging=mapped;rows=bf16,tune=1'

``--variants`` runs each precision once per set of torch-cuda options (``;`` between sets, ``,``
within one); with ``tune=1`` the tile shapes it picked are printed, to copy into
``suite.backends.kernels.dense.TUNED``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import torch
from common import loadgen_run
from cuda_host import GpuBusy, uniform_library
from gpu import features_only

from suite.backends.base import BackendConfig
from suite.backends.torch_cuda import TorchCUDABackend
from suite.config import Mode, RunConfig, Scenario, resolve
from suite.models import ModelSpec
from suite.runner import calibrated, warm_up


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
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
    args = ap.parse_args()
    for model in args.models.split(","):
        spec = ModelSpec(name=model, scale=args.scale)
        server = resolve(RunConfig(model=spec, backend="torch-cuda", scenario=Scenario.SERVER, profile="smoke"))
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
            backend = TorchCUDABackend(BackendConfig(model=spec, precision=precision, options=options))
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
                outcome, d = loadgen_run(library, backend, off, workers=off_d.workers)
                cap = float(d.get("result_samples_per_second") or 0)
                srv = dataclasses.replace(server, max_batch_items=srv_d.max_batch_items, batch_timeout_us=srv_d.batch_timeout_us,
                                          min_duration_ms=int(args.seconds * 1000), min_query_count=256, performance_sample_count=0,
                                          mode=Mode.PERFORMANCE, target_qps_source="auto")
                wu = warm_up(backend, library, srv, srv_d.workers, probe_s=1.0, full_batches=True)
                auto, rec = calibrated(srv, wu, q_items, full_batches=True)
                info = backend.info().extra
                fused = info.get("fused") or {}
                head = {"model": model, "scale": spec.scale, "precision": precision, "variant": variant, "staging": info.get("staging"),
                        "staging_note": info.get("staging_note"), "tiles": fused.get("tiles"), "tuned_ms": fused.get("tuned_ms"),
                        "load_s": round(load_s, 1),
                        "offline_qps": cap, "offline_items_per_s": round(outcome.completed_items / max(outcome.duration_s, 1e-9)),
                        "server_batch": dataclasses.asdict(srv_d), "auto_server_qps": auto.target_qps,
                        "bucket_ms": info["bucket_ms"], "capture_s": info["capture_s"]}
                print(f"{model:<10} {precision:<5} [{variant}] staging {info.get('staging')} {info.get('staging_note') or ''}  "
                      f"bucket 16384: {info['bucket_ms'].get('16384')} ms  tiles {info.get('fused', {}).get('tiles')}", flush=True)
                if "tune=1" in variant:
                    from suite.backends.kernels import dense

                    print("  TUNED = " + repr(dense.TUNED), flush=True)
                print(f"{model:<10} {precision:<5} load {load_s:5.1f} s  Offline {cap:10,.0f} q/s  Server batch "
                      f"{srv_d.max_batch_items} wait {srv_d.batch_timeout_us} us  auto {auto.target_qps:,.0f} q/s "
                      f"({auto.target_qps / max(cap, 1e-9):.2f}x)", flush=True)
                pct = server.target_latency_percentile
                key = f"result_{100 * pct:.2f}_percentile_latency_ns"
                targets = [(f, f * cap) for f in (float(x) for x in args.fractions.split(","))]
                targets += [] if args.no_auto else [("auto", auto.target_qps)]
                for frac, qps in targets:
                    s = dataclasses.replace(srv, target_qps=round(qps, 1), target_qps_source="cli")
                    with GpuBusy() as busy:
                        outcome, d = loadgen_run(library, backend, s, workers=srv_d.workers)
                    lat = float(d.get(key) or 0)
                    valid = d.get("result_validity") == "VALID" and not outcome.errors
                    mean_batch = outcome.completed_items / max(outcome.batches, 1)
                    row = {**head, "fraction": frac, "target_qps": qps, "qps": float(d.get("result_completed_samples_per_sec") or 0),
                           "latency_ms": lat / 1e6, "percentile": pct, "sla_ms": server.target_latency_ns / 1e6,
                           "valid": valid, "mean_batch_items": round(mean_batch), "errors": outcome.errors[:1],
                           "host_us_per_batch": backend.info().extra.get("host_us_per_batch"),
                           "p50_ms": float(d.get("result_50.00_percentile_latency_ns") or 0) / 1e6,
                           "gpu_busy_pct": round(busy.percent, 1), "seconds": args.seconds}
                    print(f"  Server {frac!s:>4} {qps:10,.0f} q/s  p{100 * pct:.0f} {lat / 1e6:7.2f} ms (SLA "
                          f"{server.target_latency_ns / 1e6:.0f})  {'VALID' if valid else 'INVALID'}  mean batch {mean_batch:7,.0f}  p50 {row['p50_ms']:.2f} ms  "
                          f"host {row['host_us_per_batch']} us/batch  GPU busy {busy.percent:.0f}%",
                          flush=True)
                    with args.out.open("a") as f:
                        f.write(json.dumps(row, default=str) + "\n")
            except Exception as exc:
                print(f"{model:<10} {precision:<5} FAILED: {type(exc).__name__}: {exc}", flush=True)
                with args.out.open("a") as f:
                    f.write(json.dumps({"model": model, "precision": precision, "error": f"{type(exc).__name__}: {exc}"}) + "\n")
            finally:
                backend.close()
                torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
