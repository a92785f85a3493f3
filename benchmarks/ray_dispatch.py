"""Ray placement against local process placement on this host: dispatch cost, throughput, Offline,
and the Server ceiling at the SLA, with the ``null`` backend at a per-batch floor of 1, 2 and 5 ms
and a real one (torch-cpu), all back to back in one run.

Placements of two workers each, one intra-op thread per worker: local processes pinned one per
core (``processes``), and Ray actors, one per CPU of a two-node Ray cluster on 127.0.0.1, pinned to
the same cores, fed over their direct channel (``ray``, the default) or by Ray actor calls
(``ray-calls``, what a driver connected through Ray Client uses). ``--placements`` picks them, and
adds variants of ``ray`` to measure what a change is worth: ``ray-unpinned`` (actors not pinned),
``ray-nagle`` (the channel with Nagle's algorithm on, and the actors unpinned), ``ray-nice15``
(the actors left at the nice value 15 Ray starts its workers with) and ``ray-before`` (all three:
the actors as they were before these changes). They are measured alternately so a busy machine hurts all alike:

- dispatch: one request at a time, an empty one (ping) and one of ``--batch`` items whose float32
  scores come back (null backend, no work), median and p99;
- throughput: harness-like threads (each submits one ``--batch``-item request to the least loaded
  worker and waits for it, as the harness's threads call ``predict``), 2 and 8 per worker, best of
  two alternated ``--seconds`` points; for ``ray-calls`` also the actor calls per submit (below 1:
  submits that queued went together in one call);
- Offline and Server: real LoadGen runs through the harness (``PlacedBackend``), each placement
  with the harness threads ``suite run`` gives it (2 per worker; ``ray-calls``
  ``THREADS_PER_RAY_WORKER``). Offline: samples per second. Server (every placement but
  ``ray-calls``; at least 1,000 queries a run, for LoadGen's early stopping): the target grown 1.5x
  until p99 breaks the SLA or the run is INVALID (twice at that target), then bisected; the
  placements' searches go in lockstep, one run of each in turn, so each step of every search sees
  the machine at the same time; the null backend answers one query per batch there
  (``max_batch_items=1``), so the floor per batch is a floor per query.

    .venv/bin/python benchmarks/ray_dispatch.py [--model dlrm-rmc1 --scale small] [--seconds 3]
    .venv/bin/python benchmarks/ray_dispatch.py --placements processes,ray,ray-nagle --server-only --floors-ms 1,2 --skip-torch
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import threading
import time
from collections.abc import Generator

from common import library_for, record_run, scratch, with_settings
from harness_ceiling import passes

from suite.backends.base import BackendConfig
from suite.config import Scenario
from suite.models import ModelSpec
from suite.placement.backend import THREADS_PER_WORKER, PlacedBackend, cpu_specs
from suite.placement.base import Placement
from suite.placement.local import ProcessPlacement
from suite.placement.ray import THREADS_PER_RAY_WORKER, RayPlacement, cluster_nodes, connect, plan
from suite.results import read_detail

NODE = {"num_cpus": 1, "object_store_memory": 200 * 1024 * 1024, "node_ip_address": "127.0.0.1"}
NAMES = ("processes", "ray", "ray-calls")
#: Variants of ``ray`` that --placements may add, each with what it changes.
VARIANTS = {"ray-unpinned": "actors not pinned", "ray-nagle": "channel with Nagle's algorithm on, actors not pinned",
            "ray-nice15": "actors at Ray's nice 15", "ray-before": "as before: nice 15, not pinned, Nagle on"}


def harness_threads(name: str) -> int:
    """Harness threads per worker that `suite run` gives placement ``name``."""
    return THREADS_PER_RAY_WORKER if name == "ray-calls" else THREADS_PER_WORKER


def search_steps(start: float, steps: int) -> Generator[float, bool, float]:
    """:func:`harness_ceiling.search` as a generator: yields each target to run, is sent whether it
    passed, returns the ceiling; several searches can then take turns."""
    lo, hi = 0.0, start
    while (yield hi):
        lo, hi = hi, hi * 1.5
    for _ in range(steps):
        mid = (lo + hi) / 2
        if (yield mid):
            lo = mid
        else:
            hi = mid
    return lo


def timed(placement: Placement, worker: int, requests: list, n: int) -> tuple[float, float]:
    """Median and p99 microseconds of ``n`` sequential submits of ``requests``."""
    placement.submit(worker, requests).result()
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        placement.submit(worker, requests).result()
        samples.append((time.perf_counter() - t0) * 1e6)
    samples.sort()
    return statistics.median(samples), samples[min(n - 1, int(n * 0.99))]


def throughput(placement: Placement, spans: list[list[tuple[int, int]]], per_worker: int, seconds: float) -> float:
    """Requests per second from ``per_worker`` threads per worker, each submitting one request to
    the least loaded worker and waiting for it (what the harness's threads do)."""
    stop = time.perf_counter() + seconds
    counts = [0] * (per_worker * len(placement))

    def loop(i: int) -> None:
        k = i
        while time.perf_counter() < stop:
            placement.submit(placement.least_loaded(), [spans[k % len(spans)]]).result()
            counts[i] += 1
            k += len(counts)

    threads = [threading.Thread(target=loop, args=(i,), daemon=True) for i in range(len(counts))]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.perf_counter() - t0)


def rates(got: dict[str, float], names: tuple[str, ...]) -> str:
    """``processes N | ray N (x0.00) | ray-calls N (x0.00)``: each against local processes."""
    base = max(got["processes"], 1e-9)
    return " | ".join(f"{name} {got[name]:,.0f}" + (f" (x{got[name] / base:.2f})" if name != "processes" else "")
                      for name in names)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="dlrm-rmc1")
    ap.add_argument("--scale", default="small")
    ap.add_argument("--batch", type=int, default=2048, help="items per request")
    ap.add_argument("--seconds", type=float, default=3.0, help="per throughput point and per LoadGen run")
    ap.add_argument("--threads", default="2,8", help="harness-like threads per worker in the throughput points")
    ap.add_argument("--floors-ms", default="1,2,5", help="the null backend's per-batch floors")
    ap.add_argument("--placements", default=",".join(NAMES),
                    help=f"processes (always first), then any of ray, ray-calls, {', '.join(VARIANTS)}")
    ap.add_argument("--pings", type=int, default=200)
    ap.add_argument("--steps", type=int, default=3, help="bisection steps of the Server search")
    ap.add_argument("--skip-loadgen", action="store_true", help="no Offline and Server runs")
    ap.add_argument("--server-only", action="store_true", help="only the Server searches (no dispatch cost, throughput, Offline)")
    ap.add_argument("--skip-torch", action="store_true")
    args = ap.parse_args()
    names = tuple(dict.fromkeys(["processes", *args.placements.split(",")]))
    unknown = [n for n in names if n not in (*NAMES, *VARIANTS)]
    if unknown:
        ap.error(f"unknown placement(s) {unknown}: choose from {[*NAMES, *VARIANTS]}")
    ray_names = [n for n in names if n != "processes"]
    #: The Server search is the long part: Ray Client's fallback (ray-calls) is left out of it.
    server_names = tuple(n for n in names if n != "ray-calls")

    import ray
    from ray.cluster_utils import Cluster

    spec = ModelSpec(name=args.model, scale=args.scale)
    library, offline = library_for(spec)
    items = library.items
    b = args.batch
    spans = [[(s, s + b)] for s in range(0, len(items) - b + 1, b)]
    print(f"host: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; ray {ray.__version__}; "
          f"{args.model} {args.scale}, {len(items):,} items, batch {b} items, mean query {library.sizes.mean():.0f} items; "
          f"placements {', '.join(names)}", flush=True)
    for name in ray_names:
        if name in VARIANTS:
            print(f"  {name}: {VARIANTS[name]}", flush=True)

    t0 = time.perf_counter()
    cluster = Cluster(initialize_head=True, head_node_args={"include_dashboard": False, **NODE})
    cluster.add_node(**NODE)
    cluster.wait_for_nodes(timeout=120)
    os.environ["RAY_ADDRESS"] = cluster.address
    connect("ray")  # this script's connection, shared by every placement (none of them owns it)
    print(f"ray cluster of 2 nodes on 127.0.0.1 up in {time.perf_counter() - t0:.1f} s", flush=True)
    # Every Ray placement's actors fit on the one-CPU nodes at once.
    share = int(100 / max(2, len(ray_names))) / 100

    def pair(backend: str, options: tuple[tuple[str, str], ...] = ()) -> dict[str, PlacedBackend]:
        config = BackendConfig(model=spec, threads=1, options=options)
        local = cpu_specs(backend, config, 2)
        placed = {"processes": PlacedBackend(backend, config, ProcessPlacement(), local)}
        for name in ray_names:
            dispatch = "calls" if name == "ray-calls" else "direct"
            ray_specs, slots = plan(backend, config, cluster_nodes(ray))
            # Actor names differ per placement; pinned to the cores the local processes get, unless unpinned.
            ray_specs = [dataclasses.replace(s, name=f"{s.name} {name}", cores=() if name in ("ray-unpinned", "ray-nagle", "ray-before") else mine.cores)
                         for s, mine in zip(ray_specs, local, strict=True)]
            ray_placement = RayPlacement("ray", [dataclasses.replace(slot, cpus=share) for slot in slots], dispatch=dispatch)
            ray_placement._nodelay = name not in ("ray-nagle", "ray-before")
            ray_placement._nice = 15 if name in ("ray-nice15", "ray-before") else None
            placed[name] = PlacedBackend(backend, config, ray_placement, ray_specs)
        for name, p in placed.items():
            t = time.perf_counter()
            p.load()
            p.attach_items(items)
            pinned = [w.get("pinned_cores") for w in p.placement.worker_info]
            nice = [w.get("nice", os.getpriority(os.PRIO_PROCESS, 0)) for w in p.placement.worker_info]
            print(f"  {name:12s} {backend} {dict(options)}: 2 workers up in {time.perf_counter() - t:.1f} s, pinned to {pinned}, nice {nice}, "
                  f"round trip median {p.placement.round_trip.median_us:.0f} us", flush=True)
        return placed

    def close(placed: dict[str, PlacedBackend]) -> None:
        for p in placed.values():
            p.close()

    rows = {}
    if not args.server_only:
        print("\n== dispatch cost, one request at a time (null backend, no work) ==", flush=True)
        null = pair("null")
        for name, p in null.items():
            ping = timed(p.placement, 0, [], args.pings)
            batch = timed(p.placement, 0, [spans[0]], args.pings)
            rows[name] = (ping, batch)
            print(f"  {name:12s} ping median {ping[0]:7.0f} us p99 {ping[1]:7.0f} us | {b}-item request median {batch[0]:7.0f} us "
                  f"p99 {batch[1]:7.0f} us", flush=True)
        for name in ray_names:
            print(f"  {name} costs {rows[name][1][0] - rows['processes'][1][0]:.0f} us more per lone request than a local process "
                  "(median)", flush=True)
        close(null)

    per_worker = [int(k) for k in args.threads.split(",")]
    table: list[str] = []

    def compare(label: str, placed: dict[str, PlacedBackend], server_start: float, one_query_batches: bool) -> None:
        if not args.server_only:
            measure(label, placed)
        if args.skip_loadgen:
            return
        # 1,000 queries at least: fewer cannot satisfy LoadGen's early stopping at the 99th percentile.
        server = with_settings(offline, scenario=Scenario.SERVER, min_duration_ms=int(args.seconds * 1000), min_query_count=1000,
                               performance_sample_count=0, target_latency_percentile=0.99,
                               **({"max_batch_items": 1} if one_query_batches else {}))
        from suite.config import RunConfig, resolve

        sla_ns = resolve(RunConfig(model=spec, backend="null", scenario=Scenario.SERVER, profile="smoke")).target_latency_ns
        server = with_settings(server, target_latency_ns=sla_ns)

        def at(name: str, qps: float) -> bool:
            # A point passes if one of two runs does: one hiccup of a shared machine does not end the search.
            for _ in range(2):
                out = scratch()
                record_run(library, placed[name], with_settings(server, target_qps=qps), out, workers=harness_threads(name) * 2,
                           backend_name=placed[name].backend)
                ok, p99 = passes(out, sla_ns)
                print(f"  Server    {name:12s} {qps:8,.0f} qps: p99 {p99 / 1e6:7.1f} ms {'ok' if ok else 'FAIL'} "
                      f"(load {os.getloadavg()[0]:.1f})", flush=True)
                if ok:
                    return True
            return False

        # The searches take turns, one point each, so a busy stretch of the machine hurts all alike.
        searches = {name: search_steps(server_start, args.steps) for name in server_names}
        targets = {name: next(s) for name, s in searches.items()}
        ceilings: dict[str, float] = {}
        while targets:
            for name in list(targets):
                try:
                    targets[name] = searches[name].send(at(name, targets[name]))
                except StopIteration as stop:
                    ceilings[name] = stop.value
                    del targets[name]
        table.append(f"{label:30s} Server ceiling at p99 <= {sla_ns / 1e6:.0f} ms, queries/s: " + rates(ceilings, server_names))
        print("  " + table[-1], flush=True)

    def measure(label: str, placed: dict[str, PlacedBackend]) -> None:
        print(f"\n== {label}: throughput, {per_worker} threads per worker, best of two alternated {args.seconds:.0f}-s points ==",
              flush=True)
        calls = placed["ray-calls"].placement if "ray-calls" in placed else None
        assert calls is None or isinstance(calls, RayPlacement)
        best_processes = 0.0
        for k in per_worker:
            got: dict[str, float] = {}
            coalesced = 1.0
            for name in names + names:
                before = (sum(a.sent for a in calls._actors), sum(a.submits for a in calls._actors)) if calls else (0, 0)
                rate = throughput(placed[name].placement, spans, k, args.seconds)
                got[name] = max(got.get(name, 0.0), rate)
                if name == "ray-calls" and calls is not None:
                    sent = sum(a.sent for a in calls._actors) - before[0]
                    coalesced = sent / max(1, sum(a.submits for a in calls._actors) - before[1])
            best_processes = max(best_processes, got["processes"])
            table.append(f"{label:30s} throughput, {k} threads/worker, batches/s: " + rates(got, names)
                         + (f" (ray-calls: {coalesced:.2f} calls/submit)" if calls else ""))
            print("  " + table[-1], flush=True)
        if args.skip_loadgen:
            return
        got_offline: dict[str, float] = {}
        # LoadGen's Offline query holds expected QPS x duration samples: from the throughput above.
        expected = best_processes * b / float(library.sizes.mean())
        for name in names:
            threads = harness_threads(name) * 2
            settings = with_settings(offline, min_duration_ms=int(args.seconds * 1000), min_query_count=1, target_qps=expected)
            out = scratch()
            record_run(library, placed[name], settings, out, workers=threads, backend_name=placed[name].backend)
            detail = read_detail(out / "mlperf_log_detail.txt")
            got_offline[name] = float(detail.get("result_samples_per_second") or 0)
            print(f"  Offline   {name:12s} ({threads} harness threads): {got_offline[name]:9,.0f} samples/s "
                  f"{detail.get('result_validity')}", flush=True)
        table.append(f"{label:30s} Offline, samples/s: " + rates(got_offline, names))
        print("  " + table[-1], flush=True)

    for ms in [int(x) for x in args.floors_ms.split(",") if x]:
        placed = pair("null", (("latency_us", str(ms * 1000)),))
        # One query per batch: two workers answer at most ~2/floor queries per second.
        print(f"\n== null, {ms} ms/batch (load {os.getloadavg()[0]:.1f}) ==", flush=True)
        compare(f"null, {ms} ms/batch", placed, server_start=0.4 * 2000 / ms, one_query_batches=True)
        close(placed)
    if not args.skip_torch:
        torch_pair = pair("torch-cpu")
        t = time.perf_counter()
        torch_pair["processes"].placement.submit(0, [spans[0]]).result()
        work_ms = (time.perf_counter() - t) * 1e3
        print(f"\n== torch-cpu (load {os.getloadavg()[0]:.1f}) ==", flush=True)
        compare(f"torch-cpu, {b} items (~{work_ms:.0f} ms)", torch_pair, server_start=200.0, one_query_batches=False)
        close(torch_pair)
    ray.shutdown()
    cluster.shutdown()

    print(f"\n== summary (load average now {os.getloadavg()[0]:.1f}) ==")
    if rows:
        print(f"per-request dispatch (median, {b}-item request, no work): "
              + ", ".join(f"{name} {rows[name][1][0]:.0f} us" for name in names))
    for line in table:
        print(line)


if __name__ == "__main__":
    main()
