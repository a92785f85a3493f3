"""Session 26: the branch's qkv-fp8 kernel by tile shape (one shape a process): does it run, how far from
qk-fp8's output, and its time against qk-fp8's on 8 MLPerf-size requests. argv: block_m block_n stages"""
import sys
import torch
from suite.backends.kernels import hstu, hstu_wg
bm, bn, st = (int(a) for a in sys.argv[1:4])
tile = hstu_wg.WgTile(bm, bn, st, 2, True)
name = tile.text()
hist = torch.tensor([6500, 7000, 5800, 6900, 6200, 7100, 6000, 6400])
cand = torch.full((8,), 2048)
jag, q, k, v = hstu.tune_inputs(hist, cand, 4, 128, torch.bfloat16)
q, k, v = q / 4, k / 4, v / 4
args = (q, k, v, jag.offsets, jag.history, jag.max_len, 0.1, jag.max_len)
try:
    out = hstu_wg.hstu_attention_wg(*args, tile=tile, qk_fp8=True, v_fp8=True)
    torch.cuda.synchronize()
except Exception as exc:
    print(f"{name} qkv: failed {type(exc).__name__}: {str(exc)[:120]}")
    sys.exit(0)
want = hstu_wg.hstu_attention_wg(*args, tile=tile, qk_fp8=True)
bf = hstu_wg.hstu_attention_wg(*args)
torch.cuda.synchronize()
off = float((out - want).abs().max() / want.abs().max())
offb = float((out - bf).abs().max() / bf.abs().max())


def ms(fn, n=20):
    fn(); torch.cuda.synchronize()
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    s.record()
    for _ in range(n):
        fn()
    e.record(); e.synchronize()
    return s.elapsed_time(e) / n


t_qkv = ms(lambda: hstu_wg.hstu_attention_wg(*args, tile=tile, qk_fp8=True, v_fp8=True))
t_qk = ms(lambda: hstu_wg.hstu_attention_wg(*args, tile=tile, qk_fp8=True))
t_qkdef = ms(lambda: hstu_wg.hstu_attention_wg(*args, qk_fp8=True))
t_bf = ms(lambda: hstu_wg.hstu_attention_wg(*args))
t_vq = ms(lambda: hstu.quantize_columns(v, jag.offsets, jag.max_len))
print(f"{name} qkv: ran; off vs qk {off:.4f}, vs bf16 {offb:.4f}; ms qkv {t_qkv:.3f} (of which v quantize {t_vq:.3f}), "
      f"qk same tile {t_qk:.3f}, qk default {t_qkdef:.3f}, bf16 default {t_bf:.3f}")
