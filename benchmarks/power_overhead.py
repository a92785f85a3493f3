"""Power sampler overhead: LoadGen Offline throughput with and without ``--power``, same process.

Runs alternate (off, on, off, on, ...) so drift in clocks or temperature hits both arms alike; each
run is a real LoadGen Offline test through ``suite.harness`` with the power meter as its observer
(exactly what ``suite run --power`` does). Prints each run, the median of each arm and the ratio
on/off; the issue's bar is a ratio of at least 0.99 (the sampler costs under 1%).

On a machine with no readable source (no NVML GPU, RAPL not readable) the meter has nothing to
sample: the script says "not measured: no readable source" and still runs both arms.

    .venv/bin/python benchmarks/power_overhead.py [--backend torch-cuda] [--model dlrm-rmc1]
        [--scale small] [--seconds 10] [--repeats 5] [--target-qps 200000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from common import library_for, record_run, scratch, with_settings

from suite import power
from suite.backends import BackendConfig, get_backend
from suite.models import ModelSpec
from suite.results import read_detail


def one_run(library, backend, settings, out: Path, with_power: bool) -> tuple[float, dict | None]:
    """One run through the runner; with power, its record's ``power`` (the meter's report)."""
    result = record_run(library, backend, settings, out, power=with_power)
    qps = float(read_detail(result.path / "mlperf_log_detail.txt").get("result_samples_per_second"))
    return qps, result.data.get("power") if with_power else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", default="torch-cuda")
    parser.add_argument("--model", default="dlrm-rmc1")
    parser.add_argument("--scale", default="small")
    parser.add_argument("--seconds", type=float, default=10.0, help="LoadGen min_duration of each run")
    parser.add_argument("--repeats", type=int, default=5, help="runs per arm")
    parser.add_argument("--target-qps", type=float, default=5_000.0,
                        help="Offline expected QPS (sizes the one query: set it near the backend's real rate, or a run takes far longer than --seconds)")
    args = parser.parse_args()

    sources = power.discover()
    print(f"power sources: {power.describe(sources)}" + (f" ({', '.join(s.name for s in sources)})" if sources else ""))
    spec = ModelSpec(name=args.model, scale=args.scale)
    backend_cls = get_backend(args.backend)
    reason = backend_cls.unavailable_reason()
    if reason is not None:
        print(f"backend {args.backend} is not available here ({reason}); falling back to torch-cpu", file=sys.stderr)
        backend_cls = get_backend("torch-cpu")
    backend = backend_cls(BackendConfig(model=spec))
    backend.load()
    library, base = library_for(spec)
    settings = with_settings(base, target_qps=args.target_qps, min_duration_ms=int(args.seconds * 1000), min_query_count=1)
    root = scratch()
    arms: dict[bool, list[float]] = {False: [], True: []}
    last_report = None
    try:
        one_run(library, backend, with_settings(settings, min_duration_ms=1000), root / "warmup", False)  # warm-up
        for i in range(args.repeats):
            for with_power in (False, True):
                qps, report = one_run(library, backend, settings, root / f"run{i}-{'on' if with_power else 'off'}", with_power)
                arms[with_power].append(qps)
                extra = ""
                if report is not None:
                    last_report = report
                    extra = f"  [{report['measured']}" + (f": {report['average_w']:.1f} W, {report['samples_per_j']:.2f} samples/J" if report["average_w"] else "") + "]"
                print(f"repeat {i}: power {'on ' if with_power else 'off'} {qps:12,.1f} samples/s{extra}", flush=True)
    finally:
        backend.close()
    off, on = statistics.median(arms[False]), statistics.median(arms[True])
    print(f"backend {backend.info().name} on {backend.info().device}; median off {off:,.1f}, on {on:,.1f} samples/s")
    print(f"ratio on/off = {on / off:.4f} (overhead {100 * (1 - on / off):+.2f}%; the bar: ratio >= 0.99)")
    if last_report is None or last_report["average_w"] is None:
        print(f"power: {power.NOT_MEASURED}")
    else:
        print(f"power: {last_report['measured']}, {last_report['average_w']:.1f} W, {last_report['sample_count']} readings at {last_report['sample_hz']:g} Hz")
    return 0


if __name__ == "__main__":
    sys.exit(main())
