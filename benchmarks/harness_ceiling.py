"""Harness ceiling: the highest Server QPS whose latency percentile meets the SLA with the ``null``
backend, next to a no-op SUT written directly against LoadGen, in the same run.

The no-op SUT completes every sample inside LoadGen's issue callback (LoadGen's own
``perftests_null_sut.py``); the suite's path adds the batcher queue, a worker thread, gathering
the query's items, the backend call and the responses. Each point is a real LoadGen Server run;
the search grows the target by 1.5x until a run fails, then bisects. The suite's runs go through
the runner (each leaves its ``result.json``); the no-op SUT is LoadGen's alone, the yardstick.

``--placement processes`` runs the null backend as a GPU backend runs by default in Offline and
Server (``--devices all`` on one GPU): one spawned worker process fed row spans of the shared
items, running ``--lanes`` batches at once, and ``--lanes`` harness threads in the driver, so the
driver does only LoadGen, the batcher and the round trip to the worker. ``--fixed-qps Q`` runs
one point instead of a search and prints the CPU time the driver and the worker spent per query
(``getrusage``, ``/proc/PID/stat``), which a loaded machine disturbs far less than a ceiling;
``--profile`` adds where the driver's time went (inclusive wall time of the path's functions,
per call, from ``perf_counter_ns`` wrappers installed by this benchmark, not the product).

``--ab PYTHON`` measures two trees in one run: every repetition (``--reps``) runs this script
once with ``PYTHON`` (a venv with the baseline tree installed) and once with this interpreter,
alternating which goes first, and prints each one's result, the ratios and their spread.

    .venv/bin/python benchmarks/harness_ceiling.py [--sla-ms 10] [--seconds 3]
    .venv/bin/python benchmarks/harness_ceiling.py --model ncf --placement processes --sla-ms 5 \\
        --percentile 0.95 --no-noop --fixed-qps 20000 --profile
    .venv/bin/python benchmarks/harness_ceiling.py --model ncf --placement processes --sla-ms 5 \\
        --percentile 0.95 --no-noop --ab /tmp/host-base/.venv/bin/python --reps 3
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mlperf_loadgen as lg
from common import library_for, record_run, scratch, with_settings

from suite import harness
from suite.backends import BackendConfig, get_backend
from suite.config import Scenario, Settings
from suite.models import ModelSpec
from suite.results import read_detail


def noop_run(settings: Settings, total: int, out: Path) -> None:
    def issue(ids: list[int], _indices: list[int]) -> None:
        lg.QuerySamplesComplete([lg.QuerySampleResponse(i, 0, 0) for i in ids])

    sut = lg.ConstructFastSUT(issue, lambda: None)
    qsl = lg.ConstructQSL(total, total, lambda _s: None, lambda _s: None)
    ts = harness.test_settings(settings, total, None)
    log = lg.LogSettings()
    log.log_output.outdir = str(out)
    log.enable_trace = False
    lg.StartTestWithLogSettings(sut, qsl, ts, log, str(out / "no-audit.config"))
    lg.DestroyQSL(qsl)
    lg.DestroyFastSUT(sut)


def passes(out: Path, sla_ns: int, percentile: float) -> tuple[bool, float]:
    detail = read_detail(out / "mlperf_log_detail.txt")
    lat = float(detail.get(f"result_{100 * percentile:.2f}_percentile_latency_ns") or 0)
    ok = detail.get("result_validity") == "VALID" and lat <= sla_ns and not detail.errors
    return ok, lat


def search(run_at: Callable[[float], tuple[bool, float]], start: float, steps: int) -> float:
    lo, hi = 0.0, start
    while True:
        ok, _ = run_at(hi)
        if not ok:
            break
        lo, hi = hi, hi * 1.5
    for _ in range(steps):
        mid = (lo + hi) / 2
        if run_at(mid)[0]:
            lo = mid
        else:
            hi = mid
    return lo


def placed_null(spec: ModelSpec, lanes: int) -> Any:
    """The null backend as a GPU backend is placed by default: one spawned worker process running
    ``lanes`` requests at once (``gpu_specs`` with the device left as the CPU)."""
    from suite.placement.backend import PlacedBackend
    from suite.placement.base import WorkerSpec
    from suite.placement.local import ProcessPlacement

    config = BackendConfig(model=spec)
    worker = WorkerSpec(name="GPU-like worker 0 (null)", backend="null", config=config, concurrency=lanes)
    return PlacedBackend("null", config, ProcessPlacement(), [worker])


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (``/proc/PID/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_cpu_s() -> dict[int, float]:
    """CPU seconds of every thread of this process so far, by native thread id."""
    out = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            out[int(task.name)] = proc_cpu_s_path(task / "stat")
        except (OSError, ValueError):
            pass
    return out


def proc_cpu_s_path(path: Path) -> float:
    fields = path.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_names() -> dict[int, str]:
    """Python's threads by native id; a thread Python did not start (LoadGen's) is not here."""
    import re
    import threading

    return {t.native_id: re.sub(r"-\d+$", "-N", t.name) for t in threading.enumerate() if t.native_id is not None}


def self_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def self_sys_s() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_stime


class Timers:
    """Inclusive wall time per call of the driver's path, from wrappers this benchmark installs on
    the classes (the product has none); removed again by :meth:`remove`."""

    def __init__(self) -> None:
        self.ns: dict[str, int] = defaultdict(int)
        self.calls: dict[str, int] = defaultdict(int)
        self._undo: list[tuple[Any, str, Any]] = []

    def wrap(self, owner: Any, attr: str, label: str) -> None:
        original = owner.__dict__[attr] if isinstance(owner, type) else getattr(owner, attr)
        ns, calls, clock = self.ns, self.calls, time.perf_counter_ns

        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = clock()
            try:
                return original(*args, **kwargs)
            finally:
                ns[label] += clock() - t0
                calls[label] += 1

        setattr(owner, attr, timed)
        self._undo.append((owner, attr, original))

    def remove(self) -> None:
        for owner, attr, original in reversed(self._undo):
            setattr(owner, attr, original)
        self._undo.clear()

    def report(self, queries: int) -> list[str]:
        lines = [f"  {'function (inclusive wall time)':<44} {'calls/query':>11} {'us/call':>9} {'us/query':>9}"]
        for label in sorted(self.ns, key=lambda k: -self.ns[k]):
            n = self.calls[label]
            lines.append(f"  {label:<44} {n / max(queries, 1):11.3f} {self.ns[label] / 1e3 / max(n, 1):9.2f} "
                         f"{self.ns[label] / 1e3 / max(queries, 1):9.2f}")
        return lines


def install_cprofile(timers: Timers, backend: Any, profiles: list[Any]) -> None:
    """cProfile in every harness thread and the collector (each thread its own profiler; merged)."""
    import cProfile

    def profiled(original: Any) -> Any:
        def run(*args: Any, **kwargs: Any) -> Any:
            prof = cProfile.Profile(time.thread_time_ns, 1e-9)  # CPU time, not waits
            profiles.append(prof)
            prof.enable()
            try:
                return original(*args, **kwargs)
            finally:
                prof.disable()
        return run

    for owner, attr in [(harness.Batcher, "_work"), (type(getattr(backend, "placement", None)), "_collect")]:
        if attr in getattr(owner, "__dict__", {}):
            original = owner.__dict__[attr]
            setattr(owner, attr, profiled(original))
            timers._undo.append((owner, attr, original))


def install_timers(timers: Timers, backend: Any) -> None:
    from suite.datasets.library import QueryLibrary

    timers.wrap(harness.Batcher, "issue", "Batcher.issue (LoadGen's issue callback)")
    for attr, label in [("_answer", "Batcher._answer (gather, predict, respond)"),
                        ("_submit", "Batcher._submit (gather, predict_async)"),
                        ("_resolved", "Batcher._resolved (respond, on the collector)")]:
        if attr in harness.Batcher.__dict__:  # the baseline tree of an --ab run has only _answer
            timers.wrap(harness.Batcher, attr, label)
    timers.wrap(harness.Batcher, "_count_latency", "Batcher._count_latency")
    timers.wrap(QueryLibrary, "gather", "QueryLibrary.gather")
    timers.wrap(type(backend), "predict", "backend.predict (round trip)")
    placement = getattr(backend, "placement", None)
    if placement is not None:
        timers.wrap(type(placement), "submit", "placement.submit (frame + send)")
        if "_reply" in type(placement).__dict__:
            timers.wrap(type(placement), "_reply", "placement._reply (collector)")
    timers.wrap(harness.lg, "QuerySamplesComplete", "lg.QuerySamplesComplete")
    timers.wrap(harness.lg, "QuerySampleResponse", "lg.QuerySampleResponse")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="dlrm-rmc1")
    ap.add_argument("--scale", default="tiny")
    ap.add_argument("--sla-ms", type=float, default=10.0)
    ap.add_argument("--percentile", type=float, default=0.99, help="the latency percentile the SLA bounds")
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--start-qps", type=float, default=2000.0)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--placement", choices=["in-process", "processes"], default="in-process")
    ap.add_argument("--lanes", type=int, default=8, help="processes: requests the worker runs at once, and harness threads")
    ap.add_argument("--max-batch-items", type=int, default=0, help="the batch limit (0: the settings')")
    ap.add_argument("--batch-timeout-us", type=int, default=-1, help="the batcher's wait (-1: the settings')")
    ap.add_argument("--no-noop", action="store_true", help="skip the no-op SUT's search")
    ap.add_argument("--fixed-qps", type=float, default=0.0, help="one run at this QPS: CPU time per query, no search")
    ap.add_argument("--profile", action="store_true", help="with --fixed-qps: time the driver's path per call")
    ap.add_argument("--cprofile", action="store_true", help="with --fixed-qps: cProfile the harness threads and the collector")
    ap.add_argument("--json", action="store_true", help="end with one JSON line of the results")
    ap.add_argument("--ab", default="", help="the baseline tree's python: run both, alternating, --reps times")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--no-coalesce", action="store_true", help="LoadGen issues every query on its own (server_coalesce_queries off)")
    ap.add_argument("--switch-interval-us", type=float, default=0.0, help="the GIL switch interval during runs (0: the harness's)")
    args = ap.parse_args()
    if args.switch_interval_us:
        harness.GIL_SWITCH_INTERVAL_S = args.switch_interval_us / 1e6
    if args.ab:
        ab(args)
        return

    spec = ModelSpec(name=args.model, scale=args.scale)
    library, settings = library_for(spec)
    sla_ns = int(args.sla_ms * 1e6)
    changes: dict[str, Any] = {}
    if args.max_batch_items:
        changes["max_batch_items"] = args.max_batch_items
    if args.batch_timeout_us >= 0:
        changes["batch_timeout_us"] = args.batch_timeout_us
    if args.no_coalesce:
        changes["coalesce_queries"] = False
    base = with_settings(
        settings,
        scenario=Scenario.SERVER,
        min_duration_ms=int(args.seconds * 1000),
        min_query_count=1000,
        performance_sample_count=0,
        target_latency_ns=sla_ns,
        target_latency_percentile=args.percentile,
        **changes,
    )
    if args.placement == "processes":
        backend = placed_null(spec, args.lanes)
        workers = args.lanes
    else:
        backend = get_backend("null")(BackendConfig(model=spec))
        workers = 1
    backend.load()
    pct = f"p{100 * args.percentile:g}"
    head = (f"model={args.model} scale={args.scale} placement={args.placement}"
            + (f" lanes={args.lanes}" if args.placement == "processes" else "")
            + f" coalesce={int(base.coalesce_queries)} mean query {library.sizes.mean():.0f} items, batch <= {base.max_batch_items} items, wait "
            f"{base.batch_timeout_us} us, {workers} harness thread(s), SLA {pct} <= {args.sla_ms} ms, {args.seconds} s per point")
    result: dict[str, Any] = {"placement": args.placement, "model": args.model, "sla_ms": args.sla_ms,
                              "percentile": args.percentile, "seconds": args.seconds}
    try:
        if args.fixed_qps:
            result.update(fixed(args, library, backend, base, workers, sla_ns, pct))
            print(head)
        else:
            def suite_at(qps: float) -> tuple[bool, float]:
                out = scratch()
                record_run(library, backend, with_settings(base, target_qps=qps), out, workers=workers, backend_name="null")
                ok, lat = passes(out, sla_ns, args.percentile)
                print(f"  suite  {qps:10,.0f} qps: {pct} {lat / 1e6:7.3f} ms {'ok' if ok else 'FAIL'}", flush=True)
                return ok, lat

            def noop_at(qps: float) -> tuple[bool, float]:
                out = scratch()
                noop_run(with_settings(base, target_qps=qps), len(library), out)
                ok, lat = passes(out, sla_ns, args.percentile)
                print(f"  no-op  {qps:10,.0f} qps: {pct} {lat / 1e6:7.3f} ms {'ok' if ok else 'FAIL'}", flush=True)
                return ok, lat

            noop = 0.0 if args.no_noop else search(noop_at, args.start_qps, args.steps)
            ours = search(suite_at, args.start_qps, args.steps)
            result.update(ceiling_qps=ours, noop_qps=noop)
            print(head)
            if noop:
                print(f"no-op SUT ceiling     : {noop:10,.0f} queries/s")
            print(f"suite + null backend  : {ours:10,.0f} queries/s")
            if noop:
                print(f"ratio                 : {ours / noop:.2f}")
    finally:
        backend.close()
    if args.json:
        print(json.dumps(result))


def fixed(args: argparse.Namespace, library: Any, backend: Any, base: Settings, workers: int, sla_ns: int,
          pct: str) -> dict[str, Any]:
    """One run at ``--fixed-qps``: latency, and CPU microseconds per query of the driver and worker."""
    pids = backend.placement.pids() if args.placement == "processes" else []
    timers = Timers()
    profiles: list[Any] = []
    if args.cprofile:
        install_cprofile(timers, backend, profiles)
    elif args.profile:
        install_timers(timers, backend)
    out = scratch()
    cpu0, wcpu0, t0, sys0 = self_cpu_s(), sum(proc_cpu_s(p) for p in pids), time.perf_counter(), self_sys_s()
    threads0 = thread_cpu_s()
    names: dict[int, str] = {}
    last: dict[int, float] = dict(threads0)
    import threading

    def watch() -> None:  # the harness's threads live only during the run: read them while they do
        while not stop.wait(0.1):
            names.update(thread_names())
            last.update(thread_cpu_s())

    stop = threading.Event()
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        run = record_run(library, backend, with_settings(base, target_qps=args.fixed_qps), out, workers=workers,
                         backend_name="null")
        last.update(thread_cpu_s())
    finally:
        timers.remove()
        stop.set()
        watcher.join()
    wall = time.perf_counter() - t0
    cpu, wcpu, sys_s = self_cpu_s() - cpu0, sum(proc_cpu_s(p) for p in pids) - wcpu0, self_sys_s() - sys0
    outcome = run.outcome
    assert outcome is not None
    ok, lat = passes(out, sla_ns, args.percentile)
    q = max(outcome.completed_queries, 1)
    # The run's CPU includes the runner's warm-up and record writing: a fixed cost, small against a run of seconds.
    res = {"fixed_qps": args.fixed_qps, "valid": ok, "latency_ms": lat / 1e6, "queries": outcome.completed_queries,
           "batches": outcome.batches, "mean_batch_queries": q / max(outcome.batches, 1),
           "driver_cpu_us_per_query": 1e6 * cpu / q, "driver_cpu_us_per_batch": 1e6 * cpu / max(outcome.batches, 1), "driver_sys_share": sys_s / max(cpu, 1e-9), "worker_cpu_us_per_query": 1e6 * wcpu / q if pids else None,
           "wall_s": wall, "sut_p99_ms": outcome.sut_latency_s(0.99) * 1e3, "issue_gap_max_ms": outcome.issue_gap_max_s * 1e3}
    print(f"  suite  {args.fixed_qps:10,.0f} qps: {pct} {lat / 1e6:7.3f} ms {'ok' if ok else 'FAIL'}; "
          f"{outcome.completed_queries:,} queries in {outcome.batches:,} batches ({res['mean_batch_queries']:.1f} queries a batch); "
          f"driver CPU {res['driver_cpu_us_per_query']:.1f} us/query ({res['driver_cpu_us_per_batch']:.0f} a batch, {100 * res['driver_sys_share']:.0f}% in the kernel)"
          + (f", worker CPU {res['worker_cpu_us_per_query']:.1f} us/query" if pids else "")
          + f"; harness issue-to-answer p99 {res['sut_p99_ms']:.2f} ms, longest issue gap {res['issue_gap_max_ms']:.2f} ms")
    res["issue_stalls"] = outcome.issue_stalls_ms()
    if outcome.issue_stalls:
        print("  issue stalls [s into the run, ms]: " + " ".join(f"[{a}, {g}]" for a, g in res["issue_stalls"]))
    if profiles:
        import pstats

        stats = pstats.Stats(profiles[0])
        for prof in profiles[1:]:
            stats.add(prof)
        stats.sort_stats("tottime").print_stats(30)
    if args.profile:
        for line in timers.report(outcome.completed_queries):
            print(line)
    # The driver's CPU by thread (read every 0.1 s while the run's threads lived).
    by_name: dict[str, float] = defaultdict(float)
    for tid, t in last.items():
        by_name[names.get(tid, "LoadGen's threads")] += t - threads0.get(tid, 0.0)
    print(f"  {'driver thread':<44} {'CPU us/query':>11}")
    for name, t in sorted(by_name.items(), key=lambda kv: -kv[1]):
        if t > 0:
            print(f"  {name:<44} {1e6 * t / q:11.2f}")
    res["thread_cpu_us_per_query"] = {k: 1e6 * v / q for k, v in by_name.items()}
    return res


def ab(args: argparse.Namespace) -> None:
    """Run this script with the baseline python and with this one, ``--reps`` times, alternating."""
    argv = [a for a in sys.argv[1:]]
    i = argv.index("--ab")
    del argv[i:i + 2]
    if "--reps" in argv:
        i = argv.index("--reps")
        del argv[i:i + 2]
    argv.append("--json")
    pythons = {"before": args.ab, "after": sys.executable}
    rows: dict[str, list[dict[str, Any]]] = {"before": [], "after": []}
    for rep in range(args.reps):
        order = ["before", "after"] if rep % 2 == 0 else ["after", "before"]
        for label in order:
            print(f"== rep {rep + 1}/{args.reps}: {label} ({pythons[label]})", flush=True)
            proc = subprocess.run([pythons[label], __file__, *argv], capture_output=True, text=True, check=False)
            sys.stdout.write(proc.stdout)
            if proc.returncode != 0:
                sys.stdout.write(proc.stderr[-3000:])
                raise SystemExit(f"{label} failed with exit code {proc.returncode}")
            rows[label].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    key = "driver_cpu_us_per_query" if args.fixed_qps else "ceiling_qps"
    print(f"\n{key}, {args.reps} repetitions alternating before/after:")
    for label in ("before", "after"):
        vals = [r[key] for r in rows[label]]
        print(f"  {label:<6} " + "  ".join(f"{v:10,.1f}" for v in vals)
              + f"   median {statistics.median(vals):10,.1f}  spread {min(vals):,.1f}-{max(vals):,.1f}")
    ratios = [a[key] / b[key] for a, b in zip(rows["after"], rows["before"], strict=True) if b[key]]
    if ratios:
        print("  after/before per repetition: " + "  ".join(f"{r:.2f}" for r in ratios)
              + f"   median {statistics.median(ratios):.2f}")
    if args.fixed_qps:
        for label in ("before", "after"):
            print(f"  mean queries a batch {label}: " + "  ".join(f"{r['mean_batch_queries']:.1f}" for r in rows[label])
                  + "; driver CPU us a batch: " + "  ".join(f"{r['driver_cpu_us_per_batch']:.0f}" for r in rows[label]))
        for label in ("before", "after"):
            threads: dict[str, list[float]] = defaultdict(list)
            for r in rows[label]:
                for name, v in r.get("thread_cpu_us_per_query", {}).items():
                    threads[name].append(v)
            print(f"  driver CPU us/query by thread, {label} (median): "
                  + ", ".join(f"{name} {statistics.median(v):.1f}" for name, v in sorted(threads.items(), key=lambda kv: -statistics.median(kv[1]))))
        wkey = "worker_cpu_us_per_query"
        for label in ("before", "after"):
            vals = [r[wkey] for r in rows[label] if r.get(wkey) is not None]
            if vals:
                print(f"  {wkey} {label}: " + "  ".join(f"{v:.1f}" for v in vals))
    print(json.dumps({"ab": key, "before": [r[key] for r in rows["before"]], "after": [r[key] for r in rows["after"]]}))


if __name__ == "__main__":
    main()
