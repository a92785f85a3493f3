"""Runs tma_probe_k._probe: argv dtype rows cols kind [pad] [col0]."""
import sys
import torch
sys.path.insert(0, ".device")
from tma_probe_k import _probe, gl, TensorDescriptor, hstu

dt = {"fp8": torch.float8_e4m3fn, "bf16": torch.bfloat16, "u8": torch.uint8}[sys.argv[1]]
R, C, kind = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
pad = int(sys.argv[5]) if len(sys.argv) > 5 else 0
col0 = int(sys.argv[6]) if len(sys.argv) > 6 else 0
import os; n_rows, n_cols = 512, int(os.environ.get("N_COLS", "1024"))
base = torch.randint(0, 100, (n_rows, n_cols), device="cuda", dtype=torch.uint8)
x = base.view(dt) if dt == torch.float8_e4m3fn or dt == torch.uint8 else torch.randn(n_rows, n_cols, device="cuda").to(dt)
out = torch.zeros((R, C), dtype=dt, device="cuda")
hstu._allocator(x.device)
layout = gl.NVMMASharedLayout.get_default_for([R, C], {torch.float8_e4m3fn: gl.float8e4nv, torch.bfloat16: gl.bfloat16, torch.uint8: gl.uint8}[dt])
host = TensorDescriptor.from_tensor(x, [R, C], layout) if kind == "host" else x
try:
    _probe[(1,)](x, host, out, n_rows, n_cols, col0, R=R, C=C, PAD=pad, HOST=kind == "host", num_warps=4)
    torch.cuda.synchronize()
    same = torch.equal(out.view(torch.uint8) if dt != torch.bfloat16 else out, (x[:R, col0:col0 + C].contiguous().view(torch.uint8) if dt != torch.bfloat16 else x[:R, col0:col0 + C]))
    print(f"{sys.argv[1:]} ok equal={same}")
except Exception as exc:
    print(f"{sys.argv[1:]} bad {type(exc).__name__}: {str(exc)[:100]}")
