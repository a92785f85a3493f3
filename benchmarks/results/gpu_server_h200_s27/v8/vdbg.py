"""Session 27: which part of v in fp8 the H200 refuses. One variant a process (RECSUITE_VDBG and argv), small requests."""
import json, sys, os
import torch
from suite.backends.kernels import hstu, hstu_wg
kind = sys.argv[1]  # fp8 or bf16: v^T's type
hist = torch.tensor([300, 700, 250]); cand = torch.tensor([64, 100, 7])
if os.environ.get("ALIGNED"):  # every request a multiple of 16 tokens: each starts at an aligned column
    cand = torch.tensor([67, 99, 5])
jag, q, k, v = hstu.tune_inputs(hist, cand, 4, 128, torch.bfloat16)
args = (q, k, v, jag.offsets, jag.history, jag.max_len, 0.1, jag.max_len)
ks = 2 * k.float().abs().amax(dim=(0, 2)) / 448
T, H, D = v.shape
PADTO = int(os.environ.get('PADTO', '16'))
pad = (T + PADTO - 1) // PADTO * PADTO
if kind == "fp8":
    sv = (2 * v.float().abs().amax(dim=(0, 2)) / 448).contiguous()
    vt = torch.zeros((H, D, pad), dtype=torch.float8_e4m3fn, device=v.device)
    vt[:, :, :T] = (v.float() / sv[None, :, None]).clamp(-448, 448).to(torch.float8_e4m3fn).permute(1, 2, 0)
else:
    sv = torch.ones(H, device=v.device)
    vt = torch.zeros((H, D, pad), dtype=torch.bfloat16, device=v.device)
    vt[:, :, :T] = v.permute(1, 2, 0)
first = os.environ.get("FIRST", "ref")
if first == "ref":
    ref = hstu_wg.hstu_attention_wg(*args, qk_fp8=True, out_dtype=torch.float32, k_scale=ks)
    torch.cuda.synchronize()
tile = hstu_wg.WgTile(64, 64, 3, 2, True) if len(sys.argv) < 3 else hstu_wg.WgTile(128, 64, 4, 2, True)
o = hstu_wg.hstu_attention_wg(*args, qk_fp8=True, out_dtype=torch.float32, k_scale=ks, v_t8=vt, v_scale=sv, tile=tile)
torch.cuda.synchronize()
print("v8 launch ran", flush=True)
if first != "ref":
    ref = hstu_wg.hstu_attention_wg(*args, qk_fp8=True, out_dtype=torch.float32, k_scale=ks)
    torch.cuda.synchronize()
print(json.dumps({"kind": kind, "vdbg": os.environ.get("RECSUITE_VDBG"), "tile": tile.text(), "ran": True,
                  "rel max diff vs qk8": float((o - ref).abs().max() / ref.abs().max())}))
