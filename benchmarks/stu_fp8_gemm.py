"""dlrm-v3's STU projections on one GPU: bf16 against fp8 e4m3 (``torch._scaled_mm``), per shape.

An STU layer has two products: ``uvqk`` (tokens x 512 -> 2,048, with a bias) and the output
projection (tokens x 1,536 -> 512, added to the fp32 residual stream). At MLPerf's size a batch of
8 requests packs about 70,000 tokens (the last layer's candidate rows alone: 16,384). This times
each product as torch-cuda runs it in bf16 (``F.linear``; ``addmm`` into the fp32 stream) against
fp8 with one scale per row of the activations and one per output channel of the weights (what
cuBLAS/CUTLASS call row-wise scaling), with and without fast accumulation, and says how far each
is from the fp32 product (largest and rms distance over the largest magnitude of the fp32 result).
Activations are a layer norm's output (``uvqk``) and a gate's (``out``): as the model feeds them.

    python3 benchmarks/stu_fp8_gemm.py [--tokens 70000 16384] [--repeats 50]
"""

from __future__ import annotations

import argparse
import json

import torch
import torch.nn.functional as F
from common import cuda_ms

E4M3_MAX = 448.0


def rowwise(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x (M, K) as e4m3 with one fp32 scale per row (its largest magnitude over 448)."""
    scale = x.float().abs().amax(dim=1, keepdim=True).clamp(min=1e-12) / E4M3_MAX
    return (x.float() / scale).to(torch.float8_e4m3fn), scale


def distance(got: torch.Tensor, want: torch.Tensor) -> dict[str, float]:
    d = (got.float() - want).abs()
    top = float(want.abs().max())
    return {"max": round(float(d.max()) / top, 5), "rms": round(float(d.pow(2).mean().sqrt()) / top, 6)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tokens", type=int, nargs="+", default=[70000, 16384])
    ap.add_argument("--repeats", type=int, default=50)
    args = ap.parse_args()
    torch.manual_seed(0)
    dev = torch.device("cuda")
    e, width, gate_w = 512, 2048, 1536
    w_uvqk = torch.randn(width, e, device=dev) * (2.0 / (e + width)) ** 0.5
    b_uvqk = torch.randn(width, device=dev) * 0.01
    w_out = torch.randn(e, gate_w, device=dev) * (2.0 / (gate_w + e)) ** 0.5
    for m in args.tokens:
        x = torch.randn(m, e, device=dev) * 3
        xn = F.layer_norm(x, (e,))
        u = torch.randn(m, gate_w // 3, device=dev)
        a = torch.randn(m, gate_w // 3, device=dev) * 0.2
        g = torch.cat([F.silu(u), a, F.silu(u) * F.layer_norm(a, (a.shape[1],))], dim=1)
        for name, act, w, bias, flops in (("uvqk", xn, w_uvqk, b_uvqk, 2 * m * e * width),
                                          ("out", g, w_out, None, 2 * m * gate_w * e)):
            want = F.linear(act.double(), w.double(), None if bias is None else bias.double()).float()
            a16, w16 = act.bfloat16(), w.bfloat16()
            b16 = None if bias is None else bias.bfloat16()
            rows: dict[str, dict[str, float | str]] = {}
            if bias is not None:
                rows["bf16 linear"] = {"ms": cuda_ms(lambda: F.linear(a16, w16, b16), args.repeats, warmups=3),
                                       **distance(F.linear(a16, w16, b16), want)}
            else:
                stream = torch.zeros(m, e, device=dev)
                rows["bf16 addmm into fp32"] = {
                    "ms": cuda_ms(lambda: torch.addmm(stream, a16, w16.t(), out_dtype=torch.float32, out=stream), args.repeats, warmups=3),
                    **distance(torch.addmm(torch.zeros(m, e, device=dev), a16, w16.t(), out_dtype=torch.float32), want)}
            a8, sa = rowwise(act)
            w8, sw = rowwise(w)
            sw_t = sw.t().contiguous()
            for out_dtype in (torch.bfloat16, torch.float32):
                for fast in (False, True):
                    label = f"fp8 rowwise {str(out_dtype)[6:]}{' fast' if fast else ''}"

                    def run(out_dtype: torch.dtype = out_dtype, fast: bool = fast) -> torch.Tensor:
                        return torch._scaled_mm(a8, w8.t(), sa, sw_t, bias=None if bias is None else bias.to(out_dtype),
                                                out_dtype=out_dtype, use_fast_accum=fast)
                    try:
                        rows[label] = {"ms": cuda_ms(run, args.repeats, warmups=3), **distance(run(), want)}
                    except Exception as exc:
                        rows[label] = {"refused": str(exc).splitlines()[0][:160]}
            amax_a, amax_w = float(act.abs().max()) / E4M3_MAX, float(w.abs().max()) / E4M3_MAX
            t8 = (act / amax_a).to(torch.float8_e4m3fn)
            tw8 = (w / amax_w).to(torch.float8_e4m3fn)
            sta, stw = torch.tensor(amax_a, device=dev), torch.tensor(amax_w, device=dev)

            def tensorwise() -> torch.Tensor:
                return torch._scaled_mm(t8, tw8.t(), sta, stw, bias=None if bias is None else bias.bfloat16(),
                                        out_dtype=torch.bfloat16, use_fast_accum=True)
            try:
                rows["fp8 tensorwise bf16 fast"] = {"ms": cuda_ms(tensorwise, args.repeats, warmups=3), **distance(tensorwise(), want)}
            except Exception as exc:
                rows["fp8 tensorwise bf16 fast"] = {"refused": str(exc).splitlines()[0][:160]}
            quant = cuda_ms(lambda: rowwise(act), args.repeats, warmups=3)
            for label, row in rows.items():
                if "ms" in row:
                    row["ms"] = round(row["ms"], 4)
                    row["TFLOP/s"] = round(flops / row["ms"] / 1e9, 1)
                print(json.dumps({"tokens": m, "product": name, "path": label, **row}))
            print(json.dumps({"tokens": m, "product": name, "path": "torch's rowwise quantizing (eager, not fused)", "ms": round(quant, 4)}))


if __name__ == "__main__":
    main()
