"""DLRM-v2's fused fp8 variants on the CPU: AUC against the model's own labels.

What ``--option residual=...`` and ``fuse_last`` do to accuracy, measured where no GPU is. The
fused model's own quantized weights, scales and packed rows are run by :func:`emulate`, torch ops
on the CPU that round where the kernels round (fp8 e4m3 casts, bf16 stores, fp32 sums); on the
first ``--check`` items the Triton kernels themselves run too (``TRITON_INTERPRET=1``, slow) and
the two must agree. On MLPerf's DLRM-v2 with its tables capped at ``--rows`` rows
(the dense layers, the cross network's width 3456 and the multi-hot bags are full size), on
items drawn as the suite's generator draws them. Labels come from the fp32 model, calibrated to
DLRM-v2's target AUC; each variant's AUC is reported as a fraction of the fp32 model's on the
same labels (MLPerf's gates: 99% for 8-bit, 99.9% for bf16).

    python3 benchmarks/fp8_numerics_cpu.py [--items 65536] [--rows 20000] [--check 256]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TRITON_INTERPRET", "1")

import numpy as np
import torch

from suite.backends.kernels import fused
from suite.datasets import synthetic
from suite.metrics import auc
from suite.models import ModelSpec, build


def emulate(f: fused.FusedDLRM, dense: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """What the fp8 fused forward of ``f`` computes, with torch ops (see the module docstring)."""
    from suite.backends.kernels.dense import quantize
    from suite.backends.kernels.lookup import pooled_reference

    def units(x: torch.Tensor, scale: float) -> torch.Tensor:  # an fp8 copy, in fp8 units
        return quantize(x, scale).float()

    def linear(a_units: torch.Tensor, lin) -> torch.Tensor:
        y = (a_units @ lin.weight.float().t()) * lin.in_scale * lin.w_scale[None, :]
        return y + lin.bias[None, :] if lin.bias is not None else y

    bottom = f.bottom(dense.to(f.dtype)).float()
    sums = pooled_reference(f.tables, ids)
    x0 = torch.cat([bottom, sums.to(f.dtype).float()], dim=1)  # as stored in bf16
    x0_units = torch.cat([units(bottom, f.x0_scale), units(sums, f.x0_scale)], dim=1)  # from the fp32 sums
    x, xq = x0, x0_units
    cross = f.cross or []
    for i, (down, up) in enumerate(cross):
        next_scale = f.top[0].in_scale if i == len(cross) - 1 else cross[i + 1][0].in_scale
        y = linear(units(linear(xq, down), up.in_scale), up)
        if f.residual == "fp8":
            new = x0_units * f.x0_scale * y + xq * down.in_scale
        elif f.residual == "x0-fp8":
            new = x0_units * f.x0_scale * y + x
        else:
            new = x0 * y + x
        xq = units(new, next_scale)
        x = new.to(f.dtype).float()
    h = xq
    for i, (layer, relu) in enumerate(zip(f.top, f.relu_top, strict=False)):
        y = linear(h, layer)
        y = torch.relu(y) if relu else y
        if i == len(f.top) - 1:
            if f.fuse_last:
                return y @ f._last_w + f._last_b
            assert f.last is not None
            return f.last(y.to(f.dtype)).squeeze(1).float()
        h = units(y, f.top[i + 1].in_scale)
    raise AssertionError("DLRM-v2 has a top MLP")


VARIANTS = ("residual=bf16,fuse_last=0", "residual=x0-fp8,fuse_last=0", "residual=fp8,fuse_last=0", "residual=fp8,fuse_last=1")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--items", type=int, default=65536)
    ap.add_argument("--rows", type=int, default=20000)
    ap.add_argument("--chunk", type=int, default=4096)
    ap.add_argument("--check", type=int, default=128, help="items also run through the Triton kernels (interpreted)")
    ap.add_argument("--variants", default=";".join(VARIANTS))
    args = ap.parse_args()
    torch.manual_seed(0)
    spec = ModelSpec(name="dlrm-v2", scale=str(args.rows))
    schema = spec.schema
    t0 = time.perf_counter()
    teacher = build(spec)
    dense_np, sparse_np = fused.calibration_batch(schema, args.items, seed=1)
    dense = torch.from_numpy(dense_np)
    sparse = [torch.from_numpy(s) for s in sparse_np]

    def run(fn) -> np.ndarray:
        with torch.inference_mode():
            return torch.cat([fn(dense[s:s + args.chunk], [x[s:s + args.chunk] for x in sparse]).float()
                              for s in range(0, args.items, args.chunk)]).numpy().astype(np.float64)

    logits = run(teacher)
    z = (logits - logits.mean()) / (logits.std() or 1.0)
    u = np.random.default_rng(1).random(args.items)
    t, b = synthetic.calibrate_drawn(z, u, synthetic.target_auc("dlrm-v2"))
    labels = (u < 1 / (1 + np.exp(-(z / t + b)))).astype(np.int8)
    ref = auc(labels, logits)
    print(f"dlrm-v2, tables capped at {args.rows} rows, {args.items} items: fp32 AUC {ref:.5f} "
          f"(built and labelled in {time.perf_counter() - t0:.0f} s)", flush=True)
    bf16 = build(spec, dtype=torch.bfloat16)
    plain = run(lambda d, s: bf16(d.to(torch.bfloat16), s))
    a = auc(labels, plain)
    print(f"  plain bf16                      AUC {a:.5f} = {100 * a / ref:.3f}% of fp32; "
          f"rms {np.sqrt(((plain - logits) ** 2).mean()) / logits.std():.4f} std", flush=True)
    ids_all = torch.cat(sparse, dim=1)
    for text in args.variants.split(";"):
        opts = dict(kv.split("=", 1) for kv in text.split(",") if kv)
        t1 = time.perf_counter()
        f = fused.fuse(bf16, schema, rows="int8", dense="fp8", residual=opts.get("residual", "bf16"),
                       fuse_last=opts.get("fuse_last") == "1", release=False)
        with torch.inference_mode():
            got = torch.cat([emulate(f, dense[s:s + args.chunk], ids_all[s:s + args.chunk])
                             for s in range(0, args.items, args.chunk)]).double().numpy()
            check = ""
            if args.check:
                kern = f(dense[:args.check].to(torch.bfloat16), ids_all[:args.check]).double().numpy()
                gap = np.abs(kern - got[:args.check]).max() / logits.std()
                corr = np.corrcoef(kern, got[:args.check])[0, 1]
                check = f"; kernels on {args.check} items: max gap {gap:.4f} std, corr {corr:.5f}"
        a = auc(labels, got)
        print(f"  fp8, int8 rows, {text:<28} AUC {a:.5f} = {100 * a / ref:.3f}% of fp32; "
              f"rms {np.sqrt(((got - logits) ** 2).mean()) / logits.std():.4f} std ({time.perf_counter() - t1:.0f} s{check})",
              flush=True)


if __name__ == "__main__":
    main()
