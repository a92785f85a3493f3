"""Session 29: the v^T pass (hstu.quantize_v_columns) now writing 16 bytes a thread: alone at 32, 64
and 128 tokens a program, in GB/s of its bytes; and the production qkv-fp8 attention (pass included)
against qk-fp8 (the default), 8 MLPerf-size requests (unaligned lengths), ms and error against bf16."""
import json
import sys

import torch

sys.path.insert(0, "benchmarks")
from common import cuda_ms  # noqa: E402

from suite.backends.kernels import hstu, hstu_wg  # noqa: E402

hist = torch.tensor([6500, 7000, 5800, 6900, 6200, 7100, 6000, 6400]); cand = torch.full((8,), 2048)
jag, q, k, v = hstu.tune_inputs(hist, cand, 4, 128, torch.bfloat16)
args = (q, k, v, jag.offsets, jag.history, jag.max_len, 0.1, jag.max_len)
ks = 2 * k.float().abs().amax(dim=(0, 2)) / 448
vs = 2 * v.float().abs().amax(dim=(0, 2)) / 448
out = {}
vt, columns = hstu.quantize_v_columns(v, jag.offsets, jag.max_len, vs)
moved = v.shape[0] * v.shape[1] * v.shape[2] * 2 + vt.numel()
for tokens in (32, 64, 128):
    hstu.V_COLUMN_TOKENS = tokens
    again = hstu.quantize_v_columns(v, jag.offsets, jag.max_len, vs)[0]
    same = bool(torch.equal(again.view(torch.uint8), vt.view(torch.uint8)))
    t = cuda_ms(lambda: hstu.quantize_v_columns(v, jag.offsets, jag.max_len, vs), calls=50)
    out[f"pass {tokens} tokens"] = {"ms": round(t, 4), "GB/s": round(moved / t / 1e6, 1), "same bytes": same}
hstu.V_COLUMN_TOKENS = 32
ref = hstu_wg.hstu_attention_wg(*args)
top = ref.abs().max().item()
runs = {"qk-fp8": dict(qk_fp8=True, k_scale=ks), "qkv-fp8": dict(qk_fp8=True, k_scale=ks, v_scale=vs)}
for rep in range(2):
    for name, kw in runs.items():
        f = lambda kw=kw: hstu_wg.hstu_attention_wg(*args, out_dtype=torch.bfloat16, **kw)
        d = f().float() - ref
        out[f"{name} #{rep}"] = {"ms": round(cuda_ms(f, calls=30), 4),
                                 "err max, rms (of the largest)": [round(d.abs().max().item() / top, 5),
                                                                   round(d.pow(2).mean().sqrt().item() / top, 6)]}
print(json.dumps(out, indent=1))
