"""torch-cuda's host path on DLRM-v2: peak host memory at labelling and load, Offline samples/s
with graphs (the default) against eager, packed host staging against ``start_from_device``, one
lane against four (the GIL), and Server at fractions of the Offline rate.

Every figure comes from a real LoadGen run through the harness, with the batcher the backend
declares (``batch_defaults``). GPU busy is nvidia-smi's utilization sampled every 100 ms during
the run; host us/batch is the time ``predict`` spends before it waits for the GPU.

    python3 benchmarks/cuda_host.py [--scale 4000000] [--rows 131072] [--seconds 5] [--out DIR]
    python3 benchmarks/cuda_host.py --scale full --uniform-ids --variants graphs,start_from_device

``--uniform-ids`` skips the labelled dataset: items get the generator's dense features and Zipf
first ids, and every further multi-hot id uniform over the table (what MLPerf's expansion tables
hold), because replaying MLPerf's expansion stream for full-scale tables takes minutes of CPU.
Peak host memory is then measured for the teacher (labelling 65,536 such items) and for load.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from common import library_for, loadgen_run, raw_items_per_s, with_settings

from suite.backends.base import BackendConfig
from suite.backends.torch_cuda import TorchCUDABackend
from suite.config import RunConfig, Scenario, Settings, resolve
from suite.datasets import synthetic
from suite.datasets.batch import Batch
from suite.datasets.library import QueryLibrary
from suite.datasets.queries import QuerySizes
from suite.datasets.store import Dataset
from suite.models import ModelSpec

CHILD = """
import json, resource, sys, time
from suite.models import ModelSpec
spec = ModelSpec(name="dlrm-v2", scale=sys.argv[2])
t0 = time.perf_counter()
if sys.argv[1] == "label":
    from suite.datasets import synthetic
    synthetic.ensure(spec, int(sys.argv[3]))
elif sys.argv[1] == "teacher":
    sys.path.insert(0, ".")
    from cuda_host import uniform_items
    from suite.datasets import synthetic
    synthetic.teacher_logits(spec, uniform_items(spec, int(sys.argv[3])))
else:
    from suite.backends.base import BackendConfig
    from suite.backends.torch_cuda import TorchCUDABackend
    b = TorchCUDABackend(BackendConfig(model=spec, precision=sys.argv[4])); b.load()
    import torch; torch.cuda.synchronize()
print(json.dumps({"seconds": round(time.perf_counter() - t0, 1), "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)}))
"""


class GpuBusy:
    """nvidia-smi's utilization.gpu sampled every 100 ms while the context is open."""

    def __enter__(self) -> GpuBusy:
        self.proc = subprocess.Popen(
            ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits", "-lms", "100", "-i", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        out = self.proc.communicate()[0]
        values = [float(v) for v in out.split() if v.strip().replace(".", "").isdigit()]
        self.percent = sum(values) / len(values) if values else float("nan")


def uniform_items(spec: ModelSpec, rows: int) -> Batch:
    """Items with the generator's dense features and first ids, further multi-hot ids uniform."""
    schema = spec.schema
    rng = np.random.default_rng([spec.seed, rows])
    raw = synthetic.features(schema, rows, rng)
    dense = np.log1p(np.clip(raw.dense, 0, None)).astype(np.float32)
    sparse = []
    for t, cats in zip(schema.tables, raw.cats, strict=False):
        ids = rng.integers(0, t.rows, (rows, t.lookups), dtype=np.int32)
        ids[:, 0] = (cats[:, 0] % np.uint64(t.rows)).astype(np.int32)
        sparse.append(ids)
    return Batch(dense=dense, sparse=tuple(sparse))


def uniform_library(spec: ModelSpec, rows: int) -> tuple[QueryLibrary, Settings]:
    config = RunConfig(model=spec, backend="null", scenario=Scenario.OFFLINE, profile="smoke")
    settings = resolve(config)
    data = Dataset(path=Path("/nonexistent"), meta={}, items=uniform_items(spec, rows), labels=np.zeros((rows, 1), np.int8))
    return QueryLibrary(data, QuerySizes.parse(settings.query_size).offsets(rows, seed=spec.seed)), settings


def child(what: str, scale: str, rows: int, precision: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, what, scale, str(rows), precision], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scale", default="2000000")
    ap.add_argument("--rows", type=int, default=262_144)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--precision", default="bf16")
    ap.add_argument("--server", default="0.5,0.8,0.9", help="Server target QPS as fractions of Offline's")
    ap.add_argument("--server-seconds", type=float, default=0.0, help="Server run length [default: --seconds]")
    ap.add_argument("--uniform-ids", action="store_true")
    ap.add_argument("--variants", default="graphs,eager,start_from_device,lanes1,lanes2,lanes4")
    ap.add_argument("--out", type=Path, default=Path("."))
    args = ap.parse_args()
    spec = ModelSpec(name="dlrm-v2", scale=args.scale)
    report: dict = {"scale": args.scale, "rows": args.rows, "precision": args.precision, "seconds": args.seconds}
    if args.uniform_ids:
        report["teacher_65536_items"] = child("teacher", args.scale, 65536, args.precision)
        print(f"dlrm-v2 scale {args.scale}: teacher {report['teacher_65536_items']}", flush=True)
        library, base = uniform_library(spec, args.rows)
    else:
        report["labelling"] = child("label", args.scale, args.rows, args.precision)
        report["load"] = child("load", args.scale, args.rows, args.precision)
        print(f"dlrm-v2 scale {args.scale}: labelling {report['labelling']}, load {report['load']}", flush=True)
        library, base = library_for(spec, args.rows)
    q_items = float(library.sizes.mean())
    runs = []
    variants = {
        "graphs": ("graphs, 4 lanes (default)", (), None),
        "eager": ("eager (cuda_graphs=0)", (("cuda_graphs", "0"),), None),
        "start_from_device": ("start_from_device=1", (("start_from_device", "1"),), None),
        "lanes1": ("lanes=1, workers 1", (("lanes", "1"),), 1),
        "lanes2": ("lanes=2, workers 2", (("lanes", "2"),), 2),
        "lanes4": ("lanes=4, workers 4", (("lanes", "4"),), 4),
        "fused": ("fused Triton kernels (fused=1)", (("fused", "1"),), None),
    }
    offline_qps = 0.0
    for key in args.variants.split(","):
        label, options, workers = variants[key]
        backend = TorchCUDABackend(BackendConfig(model=spec, precision=args.precision, options=options))
        t0 = time.perf_counter()
        backend.load()
        load_s = time.perf_counter() - t0
        if "load_in_process" not in report:
            report["load_in_process"] = {"seconds": round(load_s, 1), "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)}
            print(f"load in this process: {report['load_in_process']}", flush=True)
        declared = backend.batch_defaults("Offline", base.target_latency_ns)
        raw = raw_items_per_s(backend, library.items, min(declared.max_batch_items, len(library.items)), 1.0)
        off = with_settings(base, scenario=Scenario.OFFLINE, target_qps=1.1 * raw / q_items, min_query_count=1,
                            min_duration_ms=int(args.seconds * 1000), performance_sample_count=0,
                            max_batch_items=declared.max_batch_items)
        before = backend.info().extra
        for lane in backend._lanes:  # host time of the LoadGen run only
            lane.steps_s[:], lane.batches = 0.0, 0
        with GpuBusy() as busy:
            outcome, detail = loadgen_run(library, backend, off, workers=workers or declared.workers)
        extra = backend.info().extra
        qps = float(detail.get("result_samples_per_second") or 0)
        row = {
            "variant": label, "scenario": "Offline", "samples_per_s": round(qps, 1),
            "items_per_s": round(outcome.completed_items / outcome.duration_s), "validity": detail.get("result_validity"),
            "gpu_busy_pct": round(busy.percent, 1), "host_us_per_batch": extra["host_us_per_batch"],
            "mean_batch_items": round(outcome.completed_items / max(outcome.batches, 1)), "workers": workers or declared.workers,
            "capture_s": before["capture_s"], "load_s": before["load_s"], "errors": outcome.errors[:1],
        }
        print(json.dumps(row), flush=True)
        runs.append(row)
        if key == args.variants.split(",")[0]:
            offline_qps = qps
            report["bucket_ms"] = extra["bucket_ms"]
            for fraction in [float(f) for f in args.server.split(",") if f]:
                server = backend.batch_defaults("Server", base.target_latency_ns)
                srv = with_settings(base, scenario=Scenario.SERVER, target_qps=fraction * offline_qps, min_query_count=64,
                                    min_duration_ms=int((args.server_seconds or args.seconds) * 1000), performance_sample_count=0,
                                    max_batch_items=server.max_batch_items, batch_timeout_us=server.batch_timeout_us)
                with GpuBusy() as busy:
                    outcome, detail = loadgen_run(library, backend, srv, workers=server.workers)
                key = f"result_{100 * base.target_latency_percentile:.2f}_percentile_latency_ns"
                row = {
                    "variant": f"Server at {fraction:.2f} x Offline", "scenario": "Server", "target_qps": round(fraction * offline_qps, 1),
                    "samples_per_s": float(detail.get("result_scheduled_samples_per_sec") or 0),
                    "validity": detail.get("result_validity"), "p99_ms": round(float(detail.get(key) or 0) / 1e6, 2),
                    "max_batch_items": server.max_batch_items, "mean_batch_items": round(outcome.completed_items / max(outcome.batches, 1)),
                    "gpu_busy_pct": round(busy.percent, 1), "errors": outcome.errors[:1],
                }
                print(json.dumps(row), flush=True)
                runs.append(row)
        backend.close()
        del backend
    report["runs"] = runs
    (args.out / "cuda_host.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    t0 = time.perf_counter()
    main()
    print(f"total {time.perf_counter() - t0:.0f} s", flush=True)
