"""Ray placement against local process placement on this host: dispatch cost, throughput, and the
Server ceiling at the SLA, with the ``null`` backend and a real one (torch-cpu).

Both placements run the same workers (one per CPU of a two-node loopback Ray cluster, against
two local processes pinned one per core) with one intra-op thread each, and are measured
alternately so a busy machine hurts both alike:

- dispatch: one request at a time, an empty one (ping) and one of ``--batch`` items whose
  float32 scores come back (null backend: no work), median and p99;
- throughput: ``--in-flight`` requests per worker kept outstanding for ``--seconds``, the null
  backend at 0, 1 and 5 ms a batch, and torch-cpu on ``--batch``-item slices;
- Server ceiling: real LoadGen Server runs through the runner (``PlacedBackend``), the target
  grown 1.5x until p99 breaks the SLA or the run is INVALID, then bisected.

    .venv/bin/python benchmarks/ray_dispatch.py [--model dlrm-rmc1 --scale small] [--seconds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from concurrent.futures import Future

from common import library_for, record_run, scratch, with_settings
from harness_ceiling import passes, search

from suite.backends.base import BackendConfig
from suite.config import Scenario
from suite.models import ModelSpec
from suite.placement.backend import THREADS_PER_WORKER, PlacedBackend, cpu_specs
from suite.placement.base import Placement
from suite.placement.local import ProcessPlacement
from suite.placement.ray import RayPlacement

NODE = {"num_cpus": 1, "object_store_memory": 200 * 1024 * 1024, "node_ip_address": "127.0.0.1"}


def timed(placement: Placement, worker: int, requests: list, n: int) -> tuple[float, float]:  # type: ignore[type-arg]
    """Median and p99 microseconds of ``n`` sequential submits of ``requests``."""
    placement.submit(worker, requests).result()
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        placement.submit(worker, requests).result()
        samples.append((time.perf_counter() - t0) * 1e6)
    samples.sort()
    return statistics.median(samples), samples[min(n - 1, int(n * 0.99))]


def throughput(placement: Placement, spans: list[list[tuple[int, int]]], in_flight: int, seconds: float) -> float:
    """Requests per second with ``in_flight`` outstanding per worker, spread least-loaded."""
    workers = len(placement)
    done = 0
    pending: set[Future] = set()  # type: ignore[type-arg]
    k = 0
    t0 = time.perf_counter()
    end = t0 + seconds
    while True:
        now = time.perf_counter()
        while now < end and len(pending) < in_flight * workers:
            f = placement.submit(placement.least_loaded(), [spans[k % len(spans)]])
            k += 1
            pending.add(f)
        if not pending:
            break
        f = next(iter(pending))
        f.result()
        pending.discard(f)
        done += 1
        for g in [g for g in pending if g.done()]:
            g.result()
            pending.discard(g)
            done += 1
    return done / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="dlrm-rmc1")
    ap.add_argument("--scale", default="small")
    ap.add_argument("--batch", type=int, default=2048, help="items per request")
    ap.add_argument("--seconds", type=float, default=3.0, help="per throughput point and per Server run")
    ap.add_argument("--in-flight", default="2,8", help="requests outstanding per worker (2: what the harness keeps)")
    ap.add_argument("--pings", type=int, default=200)
    ap.add_argument("--steps", type=int, default=3, help="bisection steps of the Server search")
    ap.add_argument("--skip-server", action="store_true")
    args = ap.parse_args()

    import ray
    from ray.cluster_utils import Cluster

    spec = ModelSpec(name=args.model, scale=args.scale)
    library, offline = library_for(spec)
    items = library.items
    b = args.batch
    spans = [[(s, s + b)] for s in range(0, len(items) - b + 1, b)]
    print(f"host: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; ray {ray.__version__}; "
          f"{args.model} {args.scale}, {len(items):,} items, batch {b} items", flush=True)

    t0 = time.perf_counter()
    cluster = Cluster(initialize_head=True, head_node_args={"include_dashboard": False, **NODE})
    cluster.add_node(**NODE)
    cluster.wait_for_nodes(timeout=120)
    os.environ["RAY_ADDRESS"] = cluster.address
    print(f"ray cluster of 2 nodes on 127.0.0.1 up in {time.perf_counter() - t0:.1f} s", flush=True)

    def pair(backend: str, options: tuple[tuple[str, str], ...] = ()) -> dict[str, PlacedBackend]:
        config = BackendConfig(model=spec, threads=1, options=options)
        ray_placement, ray_specs = RayPlacement.on_cluster("ray", backend, config)
        placed = {
            "ray": PlacedBackend(backend, config, ray_placement, ray_specs),
            "processes": PlacedBackend(backend, config, ProcessPlacement(), cpu_specs(backend, config, 2)),
        }
        for p in placed.values():
            t = time.perf_counter()
            p.load()
            p.attach_items(items)
            print(f"  {p.placement.name:9s} {backend} {dict(options)}: 2 workers up in {time.perf_counter() - t:.1f} s, "
                  f"round trip median {p.placement.round_trip.median_us:.0f} us", flush=True)  # type: ignore[union-attr]
        return placed

    # Dispatch cost: null backend, no work.
    print("\n== dispatch cost, one request at a time (null backend, no work) ==", flush=True)
    null = pair("null")
    rows = {}
    for name, p in null.items():
        ping = timed(p.placement, 0, [], args.pings)
        batch = timed(p.placement, 0, [spans[0]], args.pings)
        rows[name] = (ping, batch)
        print(f"  {name:9s} ping median {ping[0]:7.0f} us p99 {ping[1]:7.0f} us | {b}-item request median {batch[0]:7.0f} us "
              f"p99 {batch[1]:7.0f} us", flush=True)
    extra = rows["ray"][1][0] - rows["processes"][1][0]
    print(f"  Ray costs {extra:.0f} us more per batch than a local process (median)", flush=True)

    in_flight = [int(k) for k in args.in_flight.split(",")]
    print(f"\n== throughput, {in_flight} requests in flight per worker, {args.seconds:.0f} s per point ==", flush=True)
    results: list[tuple[str, float, float]] = []

    def compare(label: str, placed: dict[str, PlacedBackend]) -> None:
        for k in in_flight:
            got = {}
            for name in ("processes", "ray", "processes", "ray"):  # alternated, best of two
                rate = throughput(placed[name].placement, spans, k, args.seconds)
                got[name] = max(got.get(name, 0.0), rate)
            ratio = got["ray"] / got["processes"]
            results.append((f"{label}, {k} in flight", got["processes"], got["ray"]))
            print(f"  {label:28s} {k} in flight: processes {got['processes']:8.0f} batches/s | ray {got['ray']:8.0f} batches/s | "
                  f"ray/processes {ratio:.2f}", flush=True)

    compare("null, 0 ms/batch", null)
    for p in null.values():
        p.close()
    for ms in (1, 5):
        placed = pair("null", (("latency_us", str(ms * 1000)),))
        compare(f"null, {ms} ms/batch", placed)
        for p in placed.values():
            p.close()
    torch_pair = pair("torch-cpu")
    t = time.perf_counter()
    torch_pair["processes"].placement.submit(0, [spans[0]]).result()
    work_ms = (time.perf_counter() - t) * 1e3
    compare(f"torch-cpu, {b} items (~{work_ms:.0f} ms)", torch_pair)

    if not args.skip_server:
        from suite.config import RunConfig, resolve

        server = resolve(RunConfig(model=spec, backend="null", scenario=Scenario.SERVER, profile="smoke"))
        sla_ns = server.target_latency_ns
        base = with_settings(server, min_duration_ms=int(args.seconds * 1000), min_query_count=100,
                             performance_sample_count=0)
        print(f"\n== Server ceiling, torch-cpu, p99 <= {sla_ns / 1e6:.0f} ms, {args.seconds:.0f} s per point "
              f"(batcher: {base.max_batch_items} items, {base.batch_timeout_us} us) ==", flush=True)
        ceilings = {}
        for name in ("processes", "ray"):
            backend = torch_pair[name]

            def at(qps: float, backend: PlacedBackend = backend, name: str = name) -> tuple[bool, float]:
                out = scratch()
                record_run(library, backend, with_settings(base, target_qps=qps), out, workers=THREADS_PER_WORKER * 2,
                           backend_name=backend.backend)
                ok, p99 = passes(out, sla_ns)
                print(f"  {name:9s} {qps:8,.0f} qps: p99 {p99 / 1e6:7.1f} ms {'ok' if ok else 'FAIL'}", flush=True)
                return ok, p99

            ceilings[name] = search(at, 400.0, args.steps)
        print(f"  ceiling: processes {ceilings['processes']:,.0f} queries/s | ray {ceilings['ray']:,.0f} queries/s | "
              f"ray/processes {ceilings['ray'] / max(ceilings['processes'], 1):.2f}", flush=True)
    for p in torch_pair.values():
        p.close()
    cluster.shutdown()

    print("\n== summary ==")
    print(f"per-batch dispatch (median, {b}-item request, no work): processes {rows['processes'][1][0]:.0f} us, "
          f"ray {rows['ray'][1][0]:.0f} us")
    for label, local, rayed in results:
        print(f"{label:42s} ray/processes {rayed / local:.2f}")


if __name__ == "__main__":
    main()
