"""Server batching on a modelled accelerator, with the real LoadGen, on a CPU.

The null backend's device model (``--option batch_us=... item_ns=...``) holds one device per batch
for ``batch_us + item_ns x bucket(n)``, padded to the accelerator buckets as torch-cuda's graphs
are, and declares the batcher torch-cuda declares. The defaults are DLRM-v2 fp8 on an H200
(0.18 ms a batch + 0.089 us an item; ``bucket_ms`` of benchmarks/results/merged_h200) slowed
down ``--slow`` times, with the latency bound stretched as much through a user.conf, so a 2-core
machine can issue the queries (the harness and LoadGen run directly, so the stretched bound also
sizes the declared batcher). For each batching policy: an Offline run for capacity, then Server
at fractions of it; p99 against the (stretched) bound.

    .venv/bin/python benchmarks/server_batching.py [--slow 20] [--seconds 10] [--fractions 0.7,0.8,0.9]

Policies: ``declared`` (wait one replay, at most ``batches_in_flight`` batches held by the device
side), ``unlimited`` (the same wait, every lane may hold a batch: the batcher before the limit),
``no-wait``. ``--lanes`` is the device model's lanes (workers), eight as torch-cuda's.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from common import library_for, loadgen_run

from suite.backends.base import BackendConfig
from suite.backends.null import NullBackend
from suite.config import Mode, Scenario
from suite.models import ModelSpec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--slow", type=float, default=20.0)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--fractions", default="0.7,0.8,0.9")
    ap.add_argument("--policies", default="declared,unlimited,no-wait")
    ap.add_argument("--lanes", type=int, default=8)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    batch_us, item_ns = round(180 * args.slow), round(89 * args.slow)
    spec = ModelSpec(name="dlrm-v2", scale="tiny")
    library, base = library_for(spec, 65536)
    latency_ns = round(60e6 * args.slow)
    backend = NullBackend(BackendConfig(model=spec, options=(("batch_us", str(batch_us)), ("item_ns", str(item_ns)),
                                                                 ("lanes", str(args.lanes)))))
    backend.load()
    rows = []
    print(f"device model: {batch_us} us + {item_ns} ns/item (x{args.slow:g} an H200's DLRM-v2 fp8); "
          f"p99 bound {latency_ns / 1e6:.0f} ms; {args.seconds:g}-s runs")
    common = dict(min_duration_ms=int(args.seconds * 1000), min_query_count=64, performance_sample_count=0, mode=Mode.PERFORMANCE)
    for policy in args.policies.split(","):
        off_d = backend.batch_defaults("Offline", latency_ns)
        srv_d = backend.batch_defaults("Server", latency_ns)
        assert off_d is not None and srv_d is not None
        wait = 0 if policy == "no-wait" else srv_d.batch_timeout_us
        off = dataclasses.replace(base, scenario=Scenario.OFFLINE, max_batch_items=off_d.max_batch_items, batch_timeout_us=0,
                                  target_qps=1 / (backend.device_s(16384) / 16384 * float(library.sizes.mean())), **common)
        outcome, d = loadgen_run(library, backend, off, workers=off_d.workers)
        cap = float(d.get("result_samples_per_second"))
        print(f"  {policy:<9} Offline {cap:8,.1f} queries/s  batch {off_d.max_batch_items}")
        for frac in (float(f) for f in args.fractions.split(",")):
            srv = dataclasses.replace(base, scenario=Scenario.SERVER, target_qps=round(frac * cap, 1), target_latency_ns=latency_ns,
                                      target_latency_percentile=0.99, max_batch_items=srv_d.max_batch_items, batch_timeout_us=wait,
                                      batches_in_flight=srv_d.batches_in_flight if policy == "declared" else 0, **common)
            outcome, d = loadgen_run(library, backend, srv, workers=srv_d.workers)
            p99 = float(d.get("result_99.00_percentile_latency_ns")) / 1e6
            valid = d.get("result_validity") == "VALID"
            mean_batch = outcome.completed_items / max(outcome.batches, 1)
            rows.append({"policy": policy, "fraction": frac, "offline_qps": cap, "qps": float(d.get("result_completed_samples_per_sec")),
                         "p99_ms": p99, "valid": valid, "mean_batch_items": mean_batch, "batches": outcome.batches,
                         "max_batch_items": srv_d.max_batch_items, "batch_timeout_us": wait,
                         "batches_in_flight": srv.batches_in_flight, "sut_p99_ms": 1e3 * outcome.sut_latency_s(0.99)})
            print(f"  {policy:<9} Server {frac:.2f}x {float(d.get('result_completed_samples_per_sec')):8,.1f} q/s  p99 {p99:8.1f} ms  "
                  f"{'VALID' if valid else 'INVALID'}  mean batch {mean_batch:8,.0f} items  max {srv_d.max_batch_items}  wait {wait} us",
                  flush=True)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
