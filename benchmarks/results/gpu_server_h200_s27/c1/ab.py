"""Session 27: where the qk-fp8 Gluon attention's time goes (.device/hstu_ab.py is backends/kernels/hstu_wg.py with
ablate.patch applied). Ablations of its consumer (no SiLU, no p v, no copy of v, none of v, no q k) on 8 MLPerf-size
requests, the SM clock and power while it runs."""
import json, subprocess, sys, time
import torch
sys.path.insert(0, ".device")
import hstu_ab
from suite.backends.kernels import hstu, hstu_wg
hist = torch.tensor([6500, 7000, 5800, 6900, 6200, 7100, 6000, 6400])
cand = torch.full((8,), 2048)
jag, q, k, v = hstu.tune_inputs(hist, cand, 4, 128, torch.bfloat16)
args = (q, k, v, jag.offsets, jag.history, jag.max_len, 0.1, jag.max_len)
ks = 2 * k.float().abs().amax(dim=(0, 2)) / 448
hist16 = torch.cat([hist, hist]); cand16 = torch.cat([cand, cand])
jag16, q16, k16, v16 = hstu.tune_inputs(hist16, cand16, 4, 128, torch.bfloat16)


def ms(fn, n=30):
    fn(); torch.cuda.synchronize()
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    s.record()
    for _ in range(n):
        fn()
    e.record(); e.synchronize()
    return round(s.elapsed_time(e) / n, 4)


out = {}
kw = dict(qk_fp8=True, out_dtype=torch.bfloat16, k_scale=ks)
base = hstu_wg.hstu_attention_wg(*args, **kw)
mine = hstu_ab.hstu_attention_wg(*args, **kw)
out["ab copy equals main (max abs diff)"] = float((base.float() - mine.float()).abs().max())
out["main default"] = ms(lambda: hstu_wg.hstu_attention_wg(*args, **kw))
names = {0: "ab 0 as main", 1: "ab 1 no SiLU (y = s c)", 2: "ab 2 no p v product", 3: "ab 3 v not copied",
         4: "ab 4 no v at all", 5: "ab 5 no q k product"}
for tile in (hstu_wg.WgTile(64, 64, 3, 2, True), hstu_wg.WgTile(128, 64, 4, 2, True)):
    for a, name in names.items():
        if tile.block_m == 128 and a not in (0, 1, 2, 3):
            continue
        out[f"{tile.text()} {name}"] = ms(lambda: hstu_ab.hstu_attention_wg(*args, tile=tile, ablate=a, **kw))
out["main default, 16 requests"] = ms(lambda: hstu_wg.hstu_attention_wg(q16, k16, v16, jag16.offsets, jag16.history, jag16.max_len, 0.1, jag16.max_len, **kw))
out["main bf16 kernel"] = ms(lambda: hstu_wg.hstu_attention_wg(*args, out_dtype=torch.bfloat16))
# the clock and power under a second of the default kernel
smi = subprocess.Popen(["nvidia-smi", "--query-gpu=clocks.sm,power.draw,temperature.gpu", "--format=csv,noheader,nounits", "-lms", "100"],
                       stdout=subprocess.PIPE, text=True)
t0 = time.time()
while time.time() - t0 < 2.0:
    for _ in range(50):
        hstu_wg.hstu_attention_wg(*args, **kw)
    torch.cuda.synchronize()
smi.terminate()
lines = [l.split(",") for l in smi.stdout.read().strip().splitlines()]
out["sm clock MHz, power W under load (samples)"] = [(int(a), float(b)) for a, b, *_ in lines[3:-1]][:12]
print(json.dumps(out, indent=1))
