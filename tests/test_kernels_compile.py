"""The HSTU attention compiles for a Hopper GPU, on a machine without one.

Triton's interpreter (which ``test_kernels.py`` runs the kernels under on a CPU) accepts code that
the GPU compiler refuses: the tensor-descriptor loop once passed every interpreter test and then
failed to compile on the H200 (a descriptor's offsets must be 32-bit). Triton compiles ahead of
time for a named target without a driver, so each shape here is compiled for sm_90 through PTX to
a cubin, in a child process that has the interpreter switched off. Skipped without Triton (CI).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("torch")
pytest.importorskip("triton")

from suite.backends.kernels import hstu  # noqa: E402

#: Compiles one tile shape of ``_hstu_fwd`` for sm_90 (MLPerf's head sizes, bf16 inputs) and
#: prints the shared memory the cubin needs, as JSON.
COMPILE = """
import json, sys
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from suite.backends.kernels import hstu
t = hstu.Tile(**json.loads(sys.argv[1]))
fn = hstu._hstu_fwd
names = list(fn.arg_names)
consts = dict(HEADS=4, DQK=128, DV=128, BLOCK_M=t.block_m, BLOCK_N=t.block_n, CANDIDATES=True, IEEE=False,
              FAST=t.fast, ROWS_FIRST=t.rows_first, TMA=t.tma)
pointers = dict(q_ptr="*bf16", k_ptr="*bf16", v_ptr="*bf16", o_ptr="*fp32", offsets_ptr="*i64",
                q_offsets_ptr="*i64", history_ptr="*i64")
signature = {n: pointers.get(n) or ("constexpr" if n in consts else "fp32" if n in ("alpha", "inv_scale") else "i32")
             for n in names}
source = ASTSource(fn, signature, constexprs={(names.index(k),): v for k, v in consts.items()})
kernel = triton.compile(source, target=GPUTarget("cuda", 90, 32),
                        options={"num_warps": t.num_warps, "num_stages": t.num_stages})
print(json.dumps({"shared": kernel.metadata.shared, "cubin": len(kernel.asm["cubin"])}))
"""
#: An H100's or H200's most shared memory a block (227 KiB).
SM90_SHARED_BYTES = 232_448


@pytest.mark.parametrize("tile", list(dict.fromkeys([hstu.TILE, *(t for t in hstu.CANDIDATES if t.tma)])), ids=hstu.Tile.text)
def test_hstu_attention_compiles_for_hopper(tile: hstu.Tile) -> None:
    """The default shape and every tensor-descriptor shape :func:`hstu.tune` may pick compile to a
    cubin whose shared memory fits one sm_90 block."""
    env = {**os.environ, "TRITON_INTERPRET": "0"}
    args = json.dumps({f: getattr(tile, f) for f in tile.__dataclass_fields__})
    done = subprocess.run([sys.executable, "-c", COMPILE, args], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    built = json.loads(done.stdout.strip().splitlines()[-1])
    assert built["cubin"] > 0
    assert built["shared"] <= SM90_SHARED_BYTES
