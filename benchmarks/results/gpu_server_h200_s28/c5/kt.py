"""Session 28: the production v-in-e4m3 path (hstu_wg.hstu_attention_wg with v_scale, its v^T pass
included) against qk-fp8 and bf16, 8 MLPerf-size requests (unaligned lengths), ms and error."""
import json
import torch
from suite.backends.kernels import hstu, hstu_wg
hist = torch.tensor([6500, 7000, 5800, 6900, 6200, 7100, 6000, 6400]); cand = torch.full((8,), 2048)
jag, q, k, v = hstu.tune_inputs(hist, cand, 4, 128, torch.bfloat16)
args = (q, k, v, jag.offsets, jag.history, jag.max_len, 0.1, jag.max_len)
ks = 2 * k.float().abs().amax(dim=(0, 2)) / 448
vs = 2 * v.float().abs().amax(dim=(0, 2)) / 448


def ms(fn, n=30):
    fn(); torch.cuda.synchronize()
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    s.record()
    for _ in range(n):
        fn()
    e.record(); e.synchronize()
    return round(s.elapsed_time(e) / n, 4)


ref = hstu_wg.hstu_attention_wg(*args)
top = ref.abs().max().item()
out = {}
runs = {"bf16": dict(), "qk-fp8": dict(qk_fp8=True, k_scale=ks), "qkv-fp8": dict(qk_fp8=True, k_scale=ks, v_scale=vs),
        "qkv-fp8 3 slots": dict(qk_fp8=True, k_scale=ks, v_scale=vs, tile=hstu_wg.WgTile(64, 64, 3, 2, True))}
for name, kw in runs.items():
    f = lambda: hstu_wg.hstu_attention_wg(*args, out_dtype=torch.bfloat16, **kw)
    d = f().float() - ref
    out[name] = {"ms": ms(f), "err max, rms (of the largest)": [round(d.abs().max().item() / top, 5), round(d.pow(2).mean().sqrt().item() / top, 6)]}
vt_pass = lambda: hstu.quantize_v_columns(v, jag.offsets, jag.max_len, vs)
out["v^T pass alone ms"] = ms(vt_pass)
out["qk-fp8 again ms"] = ms(lambda: hstu_wg.hstu_attention_wg(*args, out_dtype=torch.bfloat16, **runs["qk-fp8"]))
out["qkv-fp8 again ms"] = ms(lambda: hstu_wg.hstu_attention_wg(*args, out_dtype=torch.bfloat16, **runs["qkv-fp8"]))
print(json.dumps(out, indent=1))
