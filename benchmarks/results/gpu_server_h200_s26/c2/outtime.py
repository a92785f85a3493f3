"""Session 26: the Gluon attention with fp32 or bf16 output, and the output gate reading each, 8 MLPerf-size requests."""
import json
import torch
from suite.backends.kernels import hstu, hstu_wg
hist = torch.tensor([6500, 7000, 5800, 6900, 6200, 7100, 6000, 6400])
cand = torch.full((8,), 2048)
jag, q, k, v = hstu.tune_inputs(hist, cand, 4, 128, torch.bfloat16)
args = (q, k, v, jag.offsets, jag.history, jag.max_len, 0.1, jag.max_len)


def ms(fn, n=20):
    fn(); torch.cuda.synchronize()
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    s.record()
    for _ in range(n):
        fn()
    e.record(); e.synchronize()
    return round(s.elapsed_time(e) / n, 4)


out = {}
for dt in (torch.float32, torch.bfloat16):
    out[f"attention bf16 out {str(dt)[6:]}"] = ms(lambda: hstu_wg.hstu_attention_wg(*args, out_dtype=dt))
ks = 2 * k.float().abs().amax(dim=(0, 2)) / 448
for name, kw in [("qk8 q-pass k-amax out-fp32 (session 25)", dict(q_in_kernel=False)),
                 ("qk8 q-pass k-amax out-bf16", dict(q_in_kernel=False, out_dtype=torch.bfloat16)),
                 ("qk8 q-kernel k-amax out-bf16", dict(out_dtype=torch.bfloat16)),
                 ("qk8 q-kernel k-bound out-bf16 (new default)", dict(out_dtype=torch.bfloat16, k_scale=ks)),
                 ("qk8 q-pass k-bound out-bf16", dict(q_in_kernel=False, out_dtype=torch.bfloat16, k_scale=ks))]:
    out[name] = ms(lambda: hstu_wg.hstu_attention_wg(*args, qk_fp8=True, **kw))
out["quantize_heads q"] = ms(lambda: hstu.quantize_heads(q))
out["quantize_spans k amax"] = ms(lambda: hstu.quantize_spans(k, jag.offsets, jag.max_len))
out["quantize_spans k given"] = ms(lambda: hstu.quantize_spans(k, jag.offsets, jag.max_len, given=ks))
rows = q.shape[0]
u = torch.randn(rows, 512, device="cuda").to(torch.bfloat16)
for dt in (torch.float32, torch.bfloat16):
    a = torch.randn(rows, 512, device="cuda").to(dt)
    out[f"gate a {str(dt)[6:]}"] = ms(lambda: hstu.fused_gate(u, a))
print(json.dumps(out))
