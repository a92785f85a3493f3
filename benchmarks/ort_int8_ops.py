"""Where onnxruntime int8 and torch-cpu int8 spend a batch: per-operator time on one core.

For each model: the onnxruntime backend's int8 model (``--option quantization``, dynamic by default)
run by a session with ORT's profiler on (one intra-op thread, the backend's graph optimisation and
spinning settings), and the torch-cpu int8 backend under ``torch.profiler``, both on the same
generated 2,048-item batches (``benchmarks/cpu.py``'s). Prints, per backend, items per CPU-second
without the profiler, then the time per operator type (ORT: the kernels its profiler records as
nodes, by op type; torch: self CPU time by aten/quantized op) as a share of the profiled total,
largest first. The difference between the two lists is the measured reason one trails the other.

    .venv/bin/python benchmarks/ort_int8_ops.py --models wnd,dlrm-rmc3 [--batches 8] [--top 8]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import onnxruntime as ort
import torch
from cpu import batches_of, generated

from suite.backends import BackendConfig, get_backend
from suite.datasets.batch import Batch
from suite.models import ModelSpec


def rate(predict, batches: list[Batch], rounds: int) -> float:
    """Items per CPU-second of ``predict`` over ``batches``, ``rounds`` times (after one warm-up)."""
    predict(batches[0])
    t = time.process_time()
    for _ in range(rounds):
        for b in batches:
            predict(b)
    return rounds * sum(len(b) for b in batches) / (time.process_time() - t)


def ort_ops(model_path: str, inputs: list[str], batches: list[Batch]) -> dict[str, float]:
    """Microseconds per op type over ``batches``, from ORT's profiler (one thread, no spinning)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.enable_profiling = True
    with tempfile.TemporaryDirectory() as tmp:
        options.profile_file_prefix = str(Path(tmp) / "ort")
        session = ort.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])
        feeds = [{inputs[0]: b.dense, **dict(zip(inputs[1:], b.sparse, strict=False))} for b in batches]
        session.run(None, feeds[0])
        for feed in feeds:
            session.run(None, feed)
        events = json.loads(Path(session.end_profiling()).read_text())
    ops: dict[str, float] = defaultdict(float)
    runs = 0
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            ops[e["args"]["op_name"]] += e["dur"]
        elif e.get("cat") == "Session" and e["name"] == "model_run":
            runs += 1
            ops["(session run, total)"] += e["dur"]
    # The warm-up run is in the profile too: scale everything to the measured batches.
    return {k: v * len(batches) / max(runs, 1) for k, v in ops.items()}


def torch_ops(backend, batches: list[Batch]) -> dict[str, float]:
    """Microseconds of self CPU time per torch op over ``batches``."""
    backend.predict(batches[0])
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for b in batches:
            backend.predict(b)
    ops = {e.key: e.self_cpu_time_total for e in prof.key_averages()}
    ops["(all ops, total)"] = sum(ops.values())
    return ops


def show(title: str, ops: dict[str, float], total_key: str, items: int, top: int) -> None:
    total = ops[total_key]
    print(f"  {title}: {total / 1e3:,.1f} ms profiled for {items:,} items")
    for name, us in sorted(((k, v) for k, v in ops.items() if k != total_key), key=lambda kv: -kv[1])[:top]:
        print(f"    {name:<44} {us / 1e3:9.1f} ms  {100 * us / total:5.1f}%")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="wnd,dlrm-rmc3,mtwnd,ncf,dlrm-v2")
    ap.add_argument("--scale", default="small")
    ap.add_argument("--batch", type=int, default=2048)
    ap.add_argument("--batches", type=int, default=8, help="batches profiled (and timed, twice over)")
    ap.add_argument("--quantization", default="dynamic", choices=("dynamic", "qdq"))
    ap.add_argument("--top", type=int, default=8)
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"# {os.uname().nodename}: torch {torch.__version__}, onnxruntime {ort.__version__}, "
          f"load average at start {os.getloadavg()}")
    for model in args.models.split(","):
        spec = ModelSpec(name=model, scale=args.scale)
        batches = batches_of(generated(spec, args.batch * args.batches), args.batch)
        items = sum(len(b) for b in batches)
        ort_b = get_backend("onnxruntime")(BackendConfig(model=spec, threads=1, precision="int8",
                                                         options=(("quantization", args.quantization),)))
        ort_b.load()
        torch_b = get_backend("torch-cpu")(BackendConfig(model=spec, threads=1, precision="int8"))
        torch_b.load()
        torch.set_num_threads(1)
        r_ort, r_torch = rate(ort_b.predict, batches, 2), rate(torch_b.predict, batches, 2)
        print(f"{model}: items per CPU-second, ort int8 ({args.quantization}) {r_ort:,.0f}, torch int8 {r_torch:,.0f} "
              f"(ort / torch {r_ort / r_torch:.2f}); load average {os.getloadavg()[0]:.1f}")
        inputs = [i.name for i in ort_b._session.get_inputs()]
        show("ort int8 per op type", ort_ops(str(ort_b.model_path), inputs, batches), "(session run, total)", items, args.top)
        show("torch int8 per op", torch_ops(torch_b, batches), "(all ops, total)", items, args.top)
        ort_b.close()
        torch_b.close()
    print(f"# load average at the end {os.getloadavg()}")


if __name__ == "__main__":
    main()
