"""DeepRecSched tuned vs static: latency-bounded QPS per model, CPU only, then with accelerator offload.

For each model, one ``suite tune`` at its rule-table SLA (DeepRecSys's medium p95 target) on all
available cores: the static baseline (each query one request, no offload), phase 1 (best B, CPU
only) and, with ``--accelerator``, phase 2 (best Q with that B). All three numbers come from the
same run on the same worker pool and are confirmed by a longer run. Prints a Markdown table and
appends it, with the raw ``tuned.json`` data, to ``OUT/summary.md`` and ``OUT/summary.jsonl``.

``--compare-pools`` instead measures closed-loop queries/s (no LoadGen: a throughput ceiling) of the
process pool and the thread pool at several B, for each model.

    .venv/bin/python benchmarks/deeprecsched.py --models dlrm-rmc1,dlrm-rmc3            # this machine
    .venv/bin/python benchmarks/deeprecsched.py --accelerator torch-cuda --models ...    # GPU machine
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from suite.backends import REGISTRY
from suite.backends.deeprecsched.tune import BATCH_SIZES, THRESHOLDS
from suite.models import MODELS, ModelSpec
from suite.search import Point
from suite.tune import TuneConfig, tune

EIGHT = ("ncf", "wnd", "mtwnd", "dlrm-rmc1", "dlrm-rmc2", "dlrm-rmc3", "din", "dien")


def log_point(p: Point) -> None:
    print(f"    run {p.run:3d} {p.phase:<14} {p.label:<13} {p.target_qps:10,.1f} qps: "
          f"p-tail {p.tail_latency_ms:8.2f} ms {'ok' if p.passed else 'FAIL'}", file=sys.stderr, flush=True)


def tune_one(args: argparse.Namespace, model: str, options: tuple[tuple[str, str], ...],
             batch_sizes: tuple[int, ...], tag: str, precision: str = "fp32") -> dict:
    config = TuneConfig(
        model=ModelSpec(name=model, scale=args.scale),
        precision=precision,
        sla_ms=args.sla_ms,
        profile=args.profile,
        query_size=args.query_size,
        threads=args.threads,
        backend_options=options,
        walks=(("batch_items", batch_sizes), ("offload_items", tuple(int(q) for q in args.thresholds.split(",")))),
        search_ms=round(args.search_seconds * 1000),
        confirm_ms=round(args.confirm_seconds * 1000),
        output=args.out / tag,
        system=args.system,
        overwrite=True,
    )
    t0 = time.perf_counter()
    data = tune(config, report=log_point if args.verbose else None).data
    data["elapsed_s"] = time.perf_counter() - t0
    data["load_average"] = os.getloadavg()[0]
    return data


def cpu_options(data: dict) -> str:
    """The CPU backend's own options the workers ran with (recorded in the tuned setting)."""
    return ", ".join(f"{k}={v}" for k, v in data["options"].items()
                     if k not in ("accelerator", "batch_items", "cpu_backend", "offload_items", "pin", "pool")) or "-"


def row(data: dict, accelerator: str) -> str:
    s, c, t = data["static"], data["cpu_only"], data["tuned"]
    mark = lambda d: "" if d["confirmed"] else "*"  # noqa: E731
    batch = lambda d: f"B={d['batch_items']}" if d["batch_items"] else "whole query"  # noqa: E731
    cells = [
        data["model"]["name"], str(data["precision"]), cpu_options(data), f"p{data['percentile']:g} <= {data['sla_ms']:g} ms", str(data["threads"]),
        f"{s['qps']:,.1f}{mark(s)}", f"{c['qps']:,.1f}{mark(c)} ({batch(c)})",
        f"{c['qps'] / s['qps']:.2f}x" if s["qps"] else "-",
    ]
    if accelerator != "none":
        cells += [f"{t['qps']:,.1f}{mark(t)} ({batch(t)}, Q={t['offload_items'] or 'off'})",
                  f"{t['qps'] / s['qps']:.2f}x" if s["qps"] else "-"]
    def walk(phase: str, knob: str) -> str:
        return ", ".join(f"{p[knob]}: {p['qps']:,.0f}{'=' if p.get('same_as') else ''}" for p in data["climb"][phase])

    cells.append(walk("batch", "batch_items"))
    if accelerator != "none":
        cells.append(walk("offload", "offload_items"))
    cells.append(f"{data['elapsed_s']:.0f} s")
    cells.append(f"{data['load_average']:.1f}")
    return "| " + " | ".join(cells) + " |"


def compare_pools(args: argparse.Namespace, models: list[str], cores: int) -> None:
    """Closed-loop queries/s of the process and thread pools at several B, one pool loaded at a time."""
    from suite.backends import BackendConfig, get_backend
    from suite.config import RunConfig, Scenario, resolve
    from suite.runner import load_library
    from suite.search import closed_loop_qps

    sizes = [int(b) for b in args.pool_batch_sizes.split(",")]
    cols = " | ".join(f"B={b}" if b else "B=k" for b in sizes)
    lines = [f"| model | pool | {cols} |", "|" + " --- |" * (2 + len(sizes))]
    print("\n".join(lines), flush=True)
    for model in models:
        spec = ModelSpec(name=model, scale=args.scale)
        run_config = RunConfig(model=spec, backend="deeprecsched", scenario=Scenario.SERVER, profile=args.profile)
        library = load_library(run_config, resolve(run_config))
        qps: dict[str, list[float]] = {}
        for pool in ("process", "thread"):
            backend = get_backend("deeprecsched")(BackendConfig(
                model=spec, threads=args.threads, options=(("cpu_backend", args.cpu_backend), ("pool", pool))))
            backend.load()
            try:
                closed_loop_qps(backend, library, 1.0)  # warm-up
                qps[pool] = []
                for b in sizes:
                    backend.retune(batch_items=b, offload_items=0)
                    qps[pool].append(max(closed_loop_qps(backend, library, args.pool_seconds)
                                         for _ in range(args.repeats)))
            finally:
                backend.close()
            lines.append(f"| {model} | {pool} | " + " | ".join(f"{q:,.0f}" for q in qps[pool]) + " |")
            print(lines[-1], flush=True)
        ratio = " | ".join(f"{p / t:.2f}x" for p, t in zip(qps["process"], qps["thread"], strict=False))
        lines.append(f"| {model} | process / thread | {ratio} |")
        print(lines[-1], flush=True)
    text = (f"closed-loop queries/s, {cores} cores, {args.threads or cores} workers, best of {args.repeats} x "
            f"{args.pool_seconds:g} s per cell (B=k: whole query)\n\n" + "\n".join(lines))
    with (args.out / "pools.md").open("a") as fh:
        fh.write(text + "\n\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default=",".join(m for m in EIGHT if m in MODELS),
                    help="comma-separated [default: the DeepRecSys models this checkout has]")
    ap.add_argument("--scale", default="small")
    ap.add_argument("--threads", type=int, default=0, help="CPU workers (0: one per available core)")
    ap.add_argument("--accelerator", default="none", help="none, or a registry backend such as torch-cuda")
    ap.add_argument("--cpu-backend", default="torch-cpu")
    ap.add_argument("--cpu-option", action="append", default=[], metavar="KEY=VALUE",
                    help="an --option of the CPU backend, handed to every worker (repeatable; e.g. rows=fp32)")
    ap.add_argument("--precisions", default="fp32", help="the workers' --precision; several are tuned one after the other per model")
    ap.add_argument("--sla-ms", type=float, help="override every model's rule-table SLA")
    ap.add_argument("--profile", default="short")
    ap.add_argument("--query-size", help="override the rule table's query sizes (suite run's --query-size)")
    ap.add_argument("--search-seconds", type=float, default=2.0)
    ap.add_argument("--confirm-seconds", type=float, default=10.0)
    ap.add_argument("--batch-sizes", default=",".join(map(str, BATCH_SIZES)))
    ap.add_argument("--thresholds", default=",".join(map(str, THRESHOLDS)))
    ap.add_argument("--system", help="system name in the results tree")
    ap.add_argument("--out", type=Path, default=Path("results/bench-deeprecsched"))
    ap.add_argument("--compare-pools", action="store_true", help="process vs thread pool, closed loop, instead")
    ap.add_argument("--pool-batch-sizes", default="0,32,64,256", help="B values for --compare-pools (0: whole query)")
    ap.add_argument("--pool-seconds", type=float, default=3.0, help="seconds per --compare-pools cell")
    ap.add_argument("--repeats", type=int, default=3, help="--compare-pools keeps the best of this many runs per cell")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every LoadGen run")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    models = [m for m in args.models.split(",") if m]
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        sys.exit(f"unknown model(s) {unknown}; this checkout has {sorted(MODELS)}")
    if args.accelerator != "none" and args.accelerator not in REGISTRY:
        sys.exit(f"unknown accelerator {args.accelerator!r}; the registry has {sorted(REGISTRY)}")
    cores = len(os.sched_getaffinity(0))
    print(f"{cores} cores available, {args.threads or cores} CPU workers, search runs {args.search_seconds:g} s, "
          f"confirming runs {args.confirm_seconds:g} s, profile {args.profile}, query sizes "
          f"{args.query_size or 'from the rule table'}", flush=True)

    if args.compare_pools:
        compare_pools(args, models, cores)
        return

    head = ["model", "precision", "CPU options", "SLA", "CPU workers", "static QPS", "tuned CPU QPS", "CPU / static"]
    if args.accelerator != "none":
        head += [f"tuned +{args.accelerator} QPS", "offload / static"]
    head.append("B climb (search QPS)")
    if args.accelerator != "none":
        head.append("Q climb")
    head += ["wall", "load average at the end"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    print("\n".join(lines), flush=True)
    options: tuple[tuple[str, str], ...] = (("cpu_backend", args.cpu_backend),)
    options += tuple((k, v) for k, _, v in (o.partition("=") for o in args.cpu_option))
    if args.accelerator != "none":
        options += (("accelerator", args.accelerator),)
    ratios: list[tuple[float, float]] = []
    for model, precision in [(m, p) for m in models for p in args.precisions.split(",")]:
        data = tune_one(args, model, options, tuple(int(b) for b in args.batch_sizes.split(",")), f"{model}-{precision}", precision)
        lines.append(row(data, args.accelerator))
        print(lines[-1], flush=True)
        s = data["static"]["qps"]
        if s:
            ratios.append((data["cpu_only"]["qps"] / s, data["tuned"]["qps"] / s))
        with (args.out / "summary.jsonl").open("a") as fh:
            fh.write(json.dumps({k: v for k, v in data.items() if k != "environment"}) + "\n")
    mean_cpu = sum(r[0] for r in ratios) / len(ratios) if ratios else float("nan")
    mean_all = sum(r[1] for r in ratios) / len(ratios) if ratios else float("nan")
    tail = f"mean tuned/static over {len(ratios)} model(s): CPU only {mean_cpu:.2f}x" + (
        f", with {args.accelerator} offload {mean_all:.2f}x" if args.accelerator != "none" else "")
    if not ratios:
        tail = "no mean: no model's static setting met the SLA at any load"
    tail += ("   (* = the confirming run did not pass; the number is the last one tried; static 0: the SLA is not met "
             "at any load, left out of the mean; = in a climb: the same schedule as a setting searched before)")
    print(tail)
    with (args.out / "summary.md").open("a") as fh:
        fh.write(f"{cores} cores, {args.threads or cores} workers, search {args.search_seconds:g} s, "
                 f"confirm {args.confirm_seconds:g} s\n\n" + "\n".join(lines) + "\n\n" + tail + "\n\n")


if __name__ == "__main__":
    main()
