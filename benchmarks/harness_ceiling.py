"""Harness ceiling: the highest Server QPS whose p99 meets the SLA with the ``null`` backend,
next to a no-op SUT written directly against LoadGen, in the same run.

The no-op SUT completes every sample inside LoadGen's issue callback (LoadGen's own
``perftests_null_sut.py``); the suite's path adds the batcher queue, a worker thread, gathering
the query's items, the backend call and the responses. Each point is a real LoadGen Server run;
the search grows the target by 1.5x until a run fails, then bisects. The suite's runs go through
the runner (each leaves its ``result.json``); the no-op SUT is LoadGen's alone, the yardstick.

    .venv/bin/python benchmarks/harness_ceiling.py [--sla-ms 10] [--seconds 3]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

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


def passes(out: Path, sla_ns: int) -> tuple[bool, float]:
    detail = read_detail(out / "mlperf_log_detail.txt")
    p99 = float(detail.get("result_99.00_percentile_latency_ns") or 0)
    ok = detail.get("result_validity") == "VALID" and p99 <= sla_ns and not detail.errors
    return ok, p99


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="dlrm-rmc1")
    ap.add_argument("--scale", default="tiny")
    ap.add_argument("--sla-ms", type=float, default=10.0)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--start-qps", type=float, default=2000.0)
    ap.add_argument("--steps", type=int, default=5)
    args = ap.parse_args()

    spec = ModelSpec(name=args.model, scale=args.scale)
    library, settings = library_for(spec)
    sla_ns = int(args.sla_ms * 1e6)
    base = with_settings(
        settings,
        scenario=Scenario.SERVER,
        min_duration_ms=int(args.seconds * 1000),
        min_query_count=1000,
        performance_sample_count=0,
        target_latency_ns=sla_ns,
        target_latency_percentile=0.99,
    )
    backend = get_backend("null")(BackendConfig(model=spec))
    backend.load()

    def suite_at(qps: float) -> tuple[bool, float]:
        out = scratch()
        record_run(library, backend, with_settings(base, target_qps=qps), out)
        ok, p99 = passes(out, sla_ns)
        print(f"  suite  {qps:10,.0f} qps: p99 {p99 / 1e6:7.3f} ms {'ok' if ok else 'FAIL'}", flush=True)
        return ok, p99

    def noop_at(qps: float) -> tuple[bool, float]:
        out = scratch()
        noop_run(with_settings(base, target_qps=qps), len(library), out)
        ok, p99 = passes(out, sla_ns)
        print(f"  no-op  {qps:10,.0f} qps: p99 {p99 / 1e6:7.3f} ms {'ok' if ok else 'FAIL'}", flush=True)
        return ok, p99

    noop = search(noop_at, args.start_qps, args.steps)
    ours = search(suite_at, args.start_qps, args.steps)
    print(f"model={args.model} scale={args.scale} mean query {library.sizes.mean():.0f} items, SLA p99 <= {args.sla_ms} ms, "
          f"{args.seconds} s per point")
    print(f"no-op SUT ceiling     : {noop:10,.0f} queries/s")
    print(f"suite + null backend  : {ours:10,.0f} queries/s")
    print(f"ratio                 : {ours / noop:.2f}")


if __name__ == "__main__":
    main()
