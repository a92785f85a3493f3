"""dlrm-v3 on one GPU: requests/s of the plain PyTorch path against the fused Triton attention.

Builds dlrm-v3 at ``--scale`` (the item table's row cap) in ``--precision`` on the GPU, draws
``--requests`` streaming requests (features only, no teacher labels: this measures speed; the
accuracy of each path is what the tests check), and times the model on batches of ``--batch``
requests, plain and fused, in the same process. One JSON line per measurement.

    python3 benchmarks/hstu_gpu.py [--scale 10000000] [--precision bf16] [--batch 256] [--seconds 3]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from suite.backends.kernels.hstu import use_fused_attention
from suite.datasets import streaming
from suite.models import ModelSpec, build

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def timed(model: torch.nn.Module, dense: torch.Tensor, sparse: list[torch.Tensor], batch: int, seconds: float) -> float:
    """Requests per second over ``seconds`` of back-to-back batches (after one warm-up batch)."""
    n = dense.shape[0]
    with torch.inference_mode():
        model(dense[:batch], [s[:batch] for s in sparse])
        torch.cuda.synchronize()
        done, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            lo = done % (n - batch + 1)
            model(dense[lo : lo + batch], [s[lo : lo + batch] for s in sparse])
            done += batch
        torch.cuda.synchronize()
        return done / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", default="10000000")
    parser.add_argument("--precision", default="bf16", choices=sorted(DTYPES))
    parser.add_argument("--requests", type=int, default=2048)
    parser.add_argument("--batch", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    spec = ModelSpec(name="dlrm-v3", scale=args.scale)
    started = time.perf_counter()
    model = build(spec, device="cuda", dtype=DTYPES[args.precision])
    load_s = time.perf_counter() - started
    batch = streaming.features(spec.config, spec, args.requests, np.random.default_rng(0))
    dense = torch.from_numpy(batch.dense).cuda()
    sparse = [torch.from_numpy(s).cuda() for s in batch.sparse]
    schema = spec.schema
    base = {"scale": args.scale, "precision": args.precision, "history_width": schema.dense - schema.tasks,
            "candidates_width": schema.tasks,
            "load_s": round(load_s, 1), "gpu": torch.cuda.get_device_name(),
            "memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 1)}
    with torch.inference_mode():
        want = model(dense[:64], [s[:64] for s in sparse]).float()
    for b in args.batch:
        plain = timed(model, dense, sparse, b, args.seconds)
        print(json.dumps({**base, "path": "plain", "batch": b, "requests_per_s": round(plain, 1)}), flush=True)
    fused = use_fused_attention(model)
    with torch.inference_mode():
        got = fused(dense[:64], [s[:64] for s in sparse]).float()
    diff = float((got - want).abs().max())
    for b in args.batch:
        rate = timed(fused, dense, sparse, b, args.seconds)
        print(json.dumps({**base, "path": "fused", "batch": b, "requests_per_s": round(rate, 1),
                          "max_logit_diff_vs_plain": diff}), flush=True)


if __name__ == "__main__":
    main()
