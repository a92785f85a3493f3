#!/usr/bin/env bash
# Session 16, call 3: (1) every tile candidate of DLRM-v2 fp8's up-projection timed alone at 16,384
# items with its cross-step epilogue as the forward runs it (call 2's sweep kept only the best);
# (2) session 15's prepared Server diagnosis: DLRM-v2 fp8 Offline 20 s, then Server at 0.85x and
# 0.9x of it for 45 s with the timeline, then the same with graph_max=65536. nvidia-smi logs clocks.
set -u
start=$SECONDS
export PYTHONUNBUFFERED=1 PY=/tmp/v/bin/python RECSUITE_DATA_DIR=/tmp/data
[ -x /tmp/v/bin/python ] || { python3 -m venv /tmp/v && echo $(python3 -c 'import site;print(site.getsitepackages()[0])') > $(/tmp/v/bin/python -c 'import sysconfig;print(sysconfig.get_paths()["purelib"])')/base.pth && /tmp/v/bin/pip install -q --no-index --no-deps .whl/*.whl; }
/tmp/v/bin/pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null 2>&1
echo "== up-projection candidates ($((SECONDS - start)) s)"
timeout 100 $PY - <<'PY' 2>&1 | grep -v -i warn | tee $OUT/up_candidates.txt
import torch
from suite.backends.kernels import dense as dk
m, n, k = 16384, 3456, 512
dev = "cuda"
f8 = torch.float8_e4m3fn
x0 = torch.randn(m, n, device=dev).to(f8)
xl = torch.randn(m, n, device=dev).to(f8)
bias = torch.randn(n, device=dev)
for name, epi in (("cross0.up (xl is x0)", dict(x0=x0, xl=x0)), ("cross1.up", dict(x0=x0, xl=xl))):
    rows = dk.tune(m, n, k, fp8=True, bias=bias, x0_scale=1.0, xl_scale=1.0, out_dtype=None, q_scale=1.0, **epi)
    tried = {dk.tiles_text(t) for t, _ in rows}
    every = dk.CANDIDATES["fp8"] + dk.CROSS_CANDIDATES["fp8"] + dk.PERSISTENT_CANDIDATES["fp8"]
    print(name, "failed:", sorted(dk.tiles_text(t) for t in every if dk.tiles_text(t) not in tried))
    for t, ms in sorted(rows, key=lambda r: r[1]):
        print(f"  {ms:.4f} ms  {dk.tiles_text(t)}")
PY
R=clocks_event_reasons.active
nvidia-smi --query-gpu=$R --format=csv >/dev/null 2>&1 || R=clocks_throttle_reasons.active
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw,temperature.gpu,utilization.gpu,$R --format=csv,noheader -lms 500 > $OUT/smi.csv 2>&1 &
SMI=$!
echo "== dlrm-v2 fp8 with the timeline, then also graph_max=65536: Offline 20 s, Server 0.85x and 0.9x for 45 s ($((SECONDS - start)) s)"
(cd benchmarks && timeout $((585 - (SECONDS - start))) $PY gpu_server.py --models dlrm-v2 --scale full --precisions fp8 --fractions 0.85,0.9 --seconds 45 \
  --offline-seconds 20 --no-auto --variants "timeline=1;timeline=1,graph_max=65536" --out $OUT/server.jsonl 2>&1 | grep -v -i warn | tail -40)
kill $SMI
echo "total $((SECONDS - start)) s"
