"""The HSTU attention and the dense matmuls compile for a Hopper GPU, on a machine without one.

Triton's interpreter (which ``test_kernels.py`` runs the kernels under on a CPU) accepts code that
the GPU compiler refuses: the tensor-descriptor loop once passed every interpreter test and then
failed to compile on the H200 (a descriptor's offsets must be 32-bit). Triton compiles ahead of
time for a named target without a driver, so each shape here is compiled for sm_90 through PTX to
a cubin, in a child process that has the interpreter switched off. Skipped without Triton (CI).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("torch")
pytest.importorskip("triton")

from suite.backends.kernels import dense, hstu, hstu_wg  # noqa: E402

#: Prefixed to the compiling scripts: ``ptxas_counts(ptx)``, the registers a thread and the bytes
#: spilled to local memory that ptxas reports for sm_90 (Triton's own build does not report them).
PTXAS = """
import os, re, subprocess, tempfile
from triton.backends.nvidia.compiler import get_ptxas
def ptxas_counts(ptx):
    with tempfile.NamedTemporaryFile("w", suffix=".ptx", delete=False) as f:
        f.write(ptx)
    done = subprocess.run([get_ptxas(90).path, "-arch=sm_90a", "-v", f.name, "-o", os.devnull], capture_output=True, text=True)
    os.unlink(f.name)
    log = done.stdout + done.stderr
    return {"regs": int(re.search(r"Used (\\d+) registers", log).group(1)),
            "spill_stores": int(re.search(r"(\\d+) bytes spill stores", log).group(1))}
"""
#: Prefixed to the scripts that compile a recorded launch: ``Recorder`` stands in for a kernel and
#: keeps the arguments of the launch; ``source(launch)`` is the kernel's source specialized as
#: Triton's launcher specializes those arguments (a pointer or an integer that is a multiple of 16
#: gets ``tt.divisibility=16``, an integer 1 becomes a constant), and the options it named. Without
#: those hints the compiler cannot prove a row's address aligned and loads 2 bytes a thread where the
#: GPU loads 16.
LAUNCH = """
from triton.backends.nvidia.compiler import CUDABackend
from triton.compiler import ASTSource
from triton.runtime.jit import native_specialize_impl
launch = {}
class Recorder:
    def __init__(self, fn):
        self.fn = fn
    def __getitem__(self, grid):
        return lambda *args, **kwargs: launch.update(fn=self.fn, args=args, kwargs=kwargs)
def source(launch):
    fn, kwargs = launch["fn"], dict(launch["kwargs"])
    options = {k: kwargs.pop(k) for k in ("num_warps", "num_stages") if k in kwargs}
    names = list(fn.arg_names)
    signature, constexprs, attrs = {}, {}, {}
    for i, (name, value) in enumerate(zip(names, launch["args"])):
        kind, attr = native_specialize_impl(CUDABackend, value, False, True, True)
        signature[name] = kind
        if kind == "constexpr":
            constexprs[(i,)] = attr
        elif isinstance(attr, str) and attr:
            attrs[(i,)] = CUDABackend.parse_attr(attr)
    for name, value in kwargs.items():
        signature[name] = "constexpr"
        constexprs[(names.index(name),)] = value
    return ASTSource(fn, signature, constexprs=constexprs, attrs=attrs), options
"""
#: Compiles one tile shape of ``_hstu_fwd`` for sm_90 (MLPerf's head sizes, bf16 inputs, or fp8 with
#: ``"fp8": true``) and prints the shared memory the cubin needs, as JSON.
COMPILE = PTXAS + """
import json, sys
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from suite.backends.kernels import hstu
args = json.loads(sys.argv[1])
fp8 = args.pop("fp8", False)
t = hstu.Tile(**args)
fn = hstu._hstu_fwd
names = list(fn.arg_names)
consts = dict(HEADS=4, DQK=128, DV=128, BLOCK_M=t.block_m, BLOCK_N=t.block_n, CANDIDATES=True, IEEE=False,
              FAST=t.fast, ROWS_FIRST=t.rows_first, TMA=t.tma, FP8=fp8, EMULATE=False, V_T=fp8)
# A launch specializes on strides of 1: v's token stride under fp8 (channels by tokens), else its channel stride.
consts["s_vt" if fp8 else "s_vd"] = 1
low = "*fp8e4nv" if fp8 else "*bf16"
pointers = dict(q_ptr=low, k_ptr=low, v_ptr=low, o_ptr="*fp32", offsets_ptr="*i64", q_offsets_ptr="*i64",
                v_offsets_ptr="*i64", history_ptr="*i64", qs_ptr="*fp32", ks_ptr="*fp32", vs_ptr="*fp32")
signature = {n: pointers.get(n) or ("constexpr" if n in consts else "fp32" if n in ("alpha", "inv_scale") else "i32")
             for n in names}
source = ASTSource(fn, signature, constexprs={(names.index(k),): v for k, v in consts.items()})
options = {"num_warps": t.num_warps, "num_stages": t.num_stages}
if t.max_registers:
    options["maxnreg"] = t.max_registers
kernel = triton.compile(source, target=GPUTarget("cuda", 90, 32), options=options)
ptx = kernel.asm["ptx"]
lines = ptx.splitlines()
tma = [line for line in lines if "cp.async.bulk.tensor" in line]
print(json.dumps({"shared": kernel.metadata.shared, "cubin": len(kernel.asm["cubin"]), "warps": kernel.metadata.num_warps,
                  "setmaxnreg": sorted({int(m.group(1)) for m in re.finditer(r"setmaxnreg\\.\\w+\\.sync\\.aligned\\.u32\\s+(\\d+)", ptx)}),
                  "mbarrier_arrives": sum("mbarrier.arrive.shared" in line for line in lines),
                  "fp8_products": sum(("e4m3.e4m3" in line) and ("mma" in line) for line in lines),
                  "tma_loads": sum(bool(re.search(r"cp\\.async\\.bulk\\.tensor\\.\\dd\\.shared", line)) for line in tma),
                  "tma_stores": sum(bool(re.search(r"cp\\.async\\.bulk\\.tensor\\.\\dd\\.global", line)) for line in tma),
                  **ptxas_counts(ptx)}))
"""
#: An H100's or H200's most shared memory a block (227 KiB).
SM90_SHARED_BYTES = 232_448


def compiled(script: str, *argv: str) -> dict:
    """Run a compiling script in a child process with Triton's interpreter off; what it printed last, as JSON."""
    env = {**os.environ, "TRITON_INTERPRET": "0"}
    done = subprocess.run([sys.executable, "-c", script, *argv], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    built: dict = json.loads(done.stdout.strip().splitlines()[-1])
    return built


@pytest.mark.parametrize("tile", list(dict.fromkeys([hstu.TILE, *(t for t in hstu.CANDIDATES if t.tma)])), ids=hstu.Tile.text)
def test_hstu_attention_compiles_for_hopper(tile: hstu.Tile) -> None:
    """The default shape and every tensor-descriptor shape :func:`hstu.tune` may pick compile to a
    cubin whose shared memory fits one sm_90 block, reading q's block and k's and v's (pipelined:
    the stages ahead and the loop's) and writing the output through descriptors. The default
    spills no register (its epilogue, with plain loads and stores, spilled 1,060 bytes a thread),
    and a shape with a register cap keeps to it."""
    built = compiled(COMPILE, json.dumps({f: getattr(tile, f) for f in tile.__dataclass_fields__}))
    assert built["cubin"] > 0
    assert built["shared"] <= SM90_SHARED_BYTES
    assert built["tma_loads"] >= 2 * tile.num_stages + 1 and built["tma_stores"] == 1
    if tile == hstu.TILE:
        assert built["spill_stores"] == 0
    if tile.max_registers:
        assert built["regs"] <= tile.max_registers


@pytest.mark.parametrize(("tile", "e4m3"), [(hstu.TILE, True), (hstu.FP8_TILE, True), (hstu.Tile(64, 64, 4, 3, rows_first=True), True),
                                           (hstu.Tile(128, 64, 8, 3, rows_first=True, tma=True), True), (hstu.Tile(16, 32, 4, 1), False)],
                         ids=lambda x: x.text() if isinstance(x, hstu.Tile) else str(x))
def test_hstu_fp8_attention_compiles_for_hopper(tile: hstu.Tile, e4m3: bool) -> None:
    """``fp8=True``: the launch shapes of MLPerf-size requests run both products as e4m3 wgmma;
    the short requests' 16-row tiles (the tests' shapes) compile too, Triton widening their fp8
    tiles for a 16-bit product. Each fits one sm_90 block's shared memory. A descriptor shape reads
    v's blocks as it reads k's, pipelined (v by plain loads in the loop: 3.0x bf16's time on an H200),
    and writes its output through a descriptor too."""
    built = compiled(COMPILE, json.dumps({**{f: getattr(tile, f) for f in tile.__dataclass_fields__}, "fp8": True}))
    assert built["cubin"] > 0 and built["shared"] <= SM90_SHARED_BYTES
    assert (built["fp8_products"] > 0) == e4m3
    if tile.tma:
        assert built["tma_loads"] >= 2 * tile.num_stages + 1 and built["tma_stores"] == 1
    else:
        assert built["tma_loads"] == built["tma_stores"] == 0


#: Compiles one launch shape of :mod:`hstu_wg`'s Gluon kernel for sm_90 (bf16, heads of 128, every
#: row or the candidate rows alone) and prints, as JSON: shared memory, ptxas's registers and spills,
#: whether ptxas serialized the warpgroup products, and what the PTX waits for and copies.
COMPILE_WG = PTXAS + """
import json, re, sys
import triton
from triton.backends.compiler import GPUTarget
from triton.experimental.gluon._runtime import GluonASTSource
from triton.backends.nvidia.compiler import get_ptxas
from suite.backends.kernels import hstu_wg
args = json.loads(sys.argv[1])
t = hstu_wg.WgTile(args["block_m"], args["block_n"], args["stages"], args["order"], args["specialized"], args["pingpong"])
fn = hstu_wg._hstu_ws_fwd if t.specialized else hstu_wg._hstu_wg_fwd
names = list(fn.arg_names)
fp8 = args.get("fp8", False)
if t.specialized:
    consts = dict(HEADS=4, D=128, BLOCK_N=t.block_n, STAGES=t.stages, CONSUMERS=t.block_m // 64,
                  CANDIDATES=args["candidates"], PINGPONG=t.pingpong, FP8=fp8, QUANT_Q=args.get("quant_q", False),
                  CONSUMER_REGS=240, FP8_V=args.get("v8", False), num_warps=t.num_warps)
else:
    consts = dict(HEADS=4, D=128, BLOCK_M=t.block_m, BLOCK_N=t.block_n, STAGES=t.stages, CANDIDATES=args["candidates"],
                  ORDER=t.order, num_warps=t.num_warps)
qk = "*fp8e4nv" if fp8 else "*bf16"
pointers = dict(q_ptr="*bf16" if args.get("quant_q") else qk, k_ptr=qk, v_ptr="*fp8e4nv" if args.get("v8") else "*bf16",
                o_ptr="*" + args.get("out", "fp32"), offsets_ptr="*i64", q_offsets_ptr="*i64", history_ptr="*i64",
                sq_ptr="*fp32", sk_ptr="*fp32", sv_ptr="*fp32", v_columns_ptr="*i64")
signature = {n: pointers.get(n) or ("constexpr" if n in consts else "fp32" if n in ("half_alpha", "inv_scale") else "i32")
             for n in names}
# A launch specializes the pointers and the token strides (multiples of 16) as divisible by 16.
attrs = {(names.index(n),): [["tt.divisibility", 16]] for n in ("q_ptr", "k_ptr", "v_ptr", "o_ptr", "s_qt", "s_kt", "s_vt", "s_ot")}
source = GluonASTSource(fn, signature, constexprs={(names.index(k),): v for k, v in consts.items()}, attrs=attrs)
options = {"num_warps": t.num_warps} | ({"maxnreg": t.maxnreg} if t.maxnreg else {})
kernel = triton.compile(source, target=GPUTarget("cuda", 90, 32), options=options)
ptx = kernel.asm["ptx"]
lines = ptx.splitlines()
import os, subprocess, tempfile
with tempfile.NamedTemporaryFile("w", suffix=".ptx", delete=False) as f:
    f.write(ptx)
log = subprocess.run([get_ptxas(90).path, "-arch=sm_90a", "-v", f.name, "-o", os.devnull], capture_output=True, text=True)
os.unlink(f.name)
print(json.dumps({"shared": kernel.metadata.shared, "cubin": len(kernel.asm["cubin"]), "warps": kernel.metadata.num_warps,
                  "setmaxnreg": sorted({int(m.group(1)) for m in re.finditer(r"setmaxnreg\\.\\w+\\.sync\\.aligned\\.u32\\s+(\\d+)", ptx)}),
                  "mbarrier_arrives": sum("mbarrier.arrive.shared" in line for line in lines),
                  "serialized": "serialized" in (log.stdout + log.stderr),
                  "waits": sorted({int(m.group(1)) for m in re.finditer(r"wgmma\\.wait_group\\.sync\\.aligned (\\d+)", ptx)}),
                  "tanh": sum("tanh.approx.f32" in line for line in lines),
                  "shuffles": sum("shfl.sync" in line for line in lines),
                  "e4m3_pairs": sum("cvt.rn.satfinite.e4m3x2.f32" in line for line in lines),
                  "e4m3_products": sum(bool(re.search(r"wgmma\\.mma_async\\S*\\.e4m3\\.e4m3", line)) for line in lines),
                  "bf16_products": sum(bool(re.search(r"wgmma\\.mma_async\\S*\\.bf16\\.bf16", line)) for line in lines),
                  "tma_loads": sum(bool(re.search(r"cp\\.async\\.bulk\\.tensor\\.\\dd\\.shared", line)) for line in lines),
                  "tma_stores": sum(bool(re.search(r"cp\\.async\\.bulk\\.tensor\\.\\dd\\.global", line)) for line in lines),
                  **ptxas_counts(ptx)}))
"""


@pytest.mark.parametrize("out", ["fp32", "bf16"])
@pytest.mark.parametrize("candidates", [False, True], ids=["every-row", "candidates"])
@pytest.mark.parametrize("tile", hstu_wg.WG_CANDIDATES, ids=hstu_wg.WgTile.text)
def test_hstu_gluon_attention_compiles_for_hopper(tile: hstu_wg.WgTile, candidates: bool, out: str) -> None:
    """The Gluon kernel's launch shapes compile for sm_90 within one block's shared memory and spill
    nothing. Orders 1 and 2 keep a product running across a wait (wait_group 1: the SiLU of one
    block beside a product), order 0 waits for all (as the Triton kernel), and ptxas serializes none
    of them. The SiLU takes the hardware tanh, and the keys and values (the stages ahead and the
    loop's), q's block and the output go through descriptors. Specialized shapes: a producer
    warpgroup given 24 registers a thread and consumers 240 (232 with one), the copies in the
    producer's loop, each consumer releasing its slot by an arrival (and handing its turn over).
    Either output dtype (``out_dtype``: fp32, or bf16 rounded on the way out)."""
    built = compiled(COMPILE_WG, json.dumps({**dataclasses.asdict(tile), "candidates": candidates, "out": out}))
    assert built["cubin"] > 0 and built["shared"] <= SM90_SHARED_BYTES
    assert built["spill_stores"] == 0
    assert not built["serialized"]
    assert (1 in built["waits"]) == (tile.order > 0) and built["tanh"] > 0
    if not tile.specialized:
        assert built["tma_loads"] >= 2 * tile.stages + 1 and built["tma_stores"] == 1
        assert not built["setmaxnreg"]
        return
    consumers = tile.block_m // 64
    assert built["warps"] == 4 * (consumers + 1)
    assert 24 in built["setmaxnreg"] and (240 if consumers == 2 else 232) in built["setmaxnreg"]
    assert built["tma_loads"] >= 2 + consumers and built["tma_stores"] == 0
    assert built["mbarrier_arrives"] == consumers * (2 if tile.pingpong else 1)


@pytest.mark.parametrize("quant_q", [True, False], ids=["q-in-kernel", "q8"])
@pytest.mark.parametrize("candidates", [False, True], ids=["every-row", "candidates"])
@pytest.mark.parametrize("tile", hstu_wg.FP8_CANDIDATES, ids=hstu_wg.WgTile.text)
def test_hstu_gluon_qk_fp8_compiles_to_e4m3_scores_and_bf16_values(tile: hstu_wg.WgTile, candidates: bool,
                                                                   quant_q: bool) -> None:
    """``qk_fp8``: the scores' products take e4m3 operands, the products with v stay bf16, with the
    partitions of the bf16 kernel, no spills and nothing serialized; q quantized by the consumers
    (read in bf16, held in registers) or read as e4m3."""
    built = compiled(COMPILE_WG, json.dumps({**dataclasses.asdict(tile), "candidates": candidates, "fp8": True,
                                             "quant_q": quant_q}))
    assert built["cubin"] > 0 and built["shared"] <= SM90_SHARED_BYTES
    assert built["spill_stores"] == 0 and not built["serialized"]
    assert built["e4m3_products"] > 0 and built["bf16_products"] > 0
    consumers = tile.block_m // 64
    assert built["warps"] == 4 * (consumers + 1) and 24 in built["setmaxnreg"]
    assert built["mbarrier_arrives"] == consumers * (2 if tile.pingpong else 1)
    bf16 = compiled(COMPILE_WG, json.dumps({**dataclasses.asdict(tile), "candidates": candidates}))
    assert bf16["e4m3_products"] == 0 and bf16["bf16_products"] > 0
    assert built["shared"] < bf16["shared"]  # q's and k's slots take a byte a value


@pytest.mark.parametrize("candidates", [False, True], ids=["every-row", "candidates"])
def test_hstu_gluon_qkv_fp8_compiles_to_e4m3_products_without_moving_p(candidates: bool) -> None:
    """``v_scale`` (v in e4m3 too): both products take e4m3 operands and none bf16; p's layout change
    to the left operand of p v is a relabeling (the kernel asserts it trivial; here: no more
    shuffles than q and k in fp8 alone, and p cast in pairs, two pairs to a register); a producer of 88
    registers (24 died at v^T's copy on the H200). Its one spill is 8 bytes, in the every-row form."""
    tile = hstu_wg.FP8V_WG_TILE
    built = compiled(COMPILE_WG, json.dumps({**dataclasses.asdict(tile), "candidates": candidates, "fp8": True,
                                             "quant_q": True, "v8": True}))
    qk8 = compiled(COMPILE_WG, json.dumps({**dataclasses.asdict(tile), "candidates": candidates, "fp8": True,
                                           "quant_q": True}))
    assert built["cubin"] > 0 and built["shared"] <= SM90_SHARED_BYTES and not built["serialized"]
    assert built["e4m3_products"] > qk8["e4m3_products"] > 0 and built["bf16_products"] == 0 < qk8["bf16_products"]
    assert built["shuffles"] <= qk8["shuffles"] and built["e4m3_pairs"] > qk8["e4m3_pairs"]  # q is cast in pairs too
    assert 88 in built["setmaxnreg"] and 88 not in qk8["setmaxnreg"] and built["spill_stores"] <= 8
    assert built["shared"] < qk8["shared"]  # v's slots take a byte a value


#: Compiles one of hstu's row-wise kernels for sm_90 with 4 warps. argv: JSON of its name, its
#: constexprs and its pointers' types (every other argument an i32).
COMPILE_ROWS = """
import json, sys
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from suite.backends.kernels import hstu
args = json.loads(sys.argv[1])
fn = getattr(hstu, args["kernel"])
names = list(fn.arg_names)
consts, types = args["consts"], args["types"]
signature = {n: types.get(n) or ("constexpr" if n in consts else "i32") for n in names}
kernel = triton.compile(ASTSource(fn, signature, constexprs={(names.index(k),): v for k, v in consts.items()}),
                        target=GPUTarget("cuda", 90, 32), options={"num_warps": 4})
print(json.dumps({"cubin": len(kernel.asm["cubin"])}))
"""


@pytest.mark.parametrize("per_row", [True, False])
def test_hstu_fp8_quantizing_kernel_compiles_for_hopper(per_row: bool) -> None:
    """quantize_qkv's kernel: bf16 rows of 128, per-row scales, or per-channel ones with each token
    written to its request's aligned column."""
    consts = dict(HEADS=4, D=128, BLOCK_R=hstu.QUANTIZE_ROWS, PER_ROW=per_row, SCATTER=not per_row, EMULATE=False)
    types = dict(x_ptr="*bf16", out_ptr="*fp8e4nv", scale_ptr="*fp32", col_ptr="*fp32", to_ptr="*bf16" if per_row else "*i64")
    assert compiled(COMPILE_ROWS, json.dumps({"kernel": "_quantize_fwd", "consts": consts, "types": types}))["cubin"] > 0


@pytest.mark.parametrize("quantize", [False, True], ids=["scales", "values"])
def test_hstu_span_quantizing_kernel_compiles_for_hopper(quantize: bool) -> None:
    """quantize_spans' two passes: the per-(head, request) largest by an atomic max, then e4m3."""
    consts = dict(HEADS=4, D=128, BLOCK_T=hstu.SPAN_TOKENS, QUANTIZE=quantize, ROUND=False)
    types = dict(x_ptr="*bf16", out_ptr="*fp8e4nv", scale_ptr="*fp32", offsets_ptr="*i64")
    assert compiled(COMPILE_ROWS, json.dumps({"kernel": "_spans_fwd", "consts": consts, "types": types}))["cubin"] > 0


def test_hstu_given_scale_quantizing_kernel_compiles_for_hopper() -> None:
    """quantize_spans with given per-head scales: whole rows of k (4 heads of 128) a program."""
    consts = dict(W=512, D=128, BLOCK_T=hstu.GIVEN_TOKENS, ROUND=False)
    types = dict(x_ptr="*bf16", out_ptr="*fp8e4nv", scale_ptr="*fp32")
    assert compiled(COMPILE_ROWS, json.dumps({"kernel": "_given_fp8_fwd", "consts": consts, "types": types}))["cubin"] > 0


#: Records quantize_v_columns' launch on CPU tensors of four MLPerf-size requests (v (T, 4, 128)
#: bf16), compiles it for sm_90 as Triton's launcher specializes it, and prints its global loads
#: and stores by PTX instruction, as JSON.
COMPILE_V_COLUMNS = LAUNCH + """
import json, re
from collections import Counter
import torch, triton
from triton.backends.compiler import GPUTarget
from suite.backends.kernels import hstu
hstu._v_columns_fwd = Recorder(hstu._v_columns_fwd)
lengths = [3000, 2500, 4100, 1999]
offsets = torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()])
v = torch.zeros(sum(lengths), 4, 128, dtype=torch.bfloat16)
hstu.quantize_v_columns(v, offsets, max(lengths), torch.ones(4))
src, options = source(launch)
ptx = triton.compile(src, target=GPUTarget("cuda", 90, 32), options=options).asm["ptx"]
print(json.dumps({"stores": Counter(re.findall(r"st\\.global(?:\\.[a-z0-9]+)*", ptx)),
                  "loads": Counter(re.findall(r"ld\\.global(?:\\.[a-z0-9]+)*", ptx))}))
"""


def test_hstu_v_columns_kernel_writes_16_bytes_a_thread_on_hopper() -> None:
    """quantize_v_columns' pass (v^T in e4m3 for attention=qkv-fp8) compiles for sm_90 with v read
    and v^T written 16 bytes a thread. Unless the kernel says its columns start on a multiple of 32
    and its mask is whole chunks, the compiler writes v^T a byte at a time: 32 stores a thread
    where two do (on the H200 the pass then ran at a fifth of the memory's rate)."""
    got = compiled(COMPILE_V_COLUMNS)
    assert got["stores"] == {"st.global.v4.b32": 2}
    assert got["loads"].get("ld.global.v4.b32") == 4


def test_hstu_rows_sum_kernel_compiles_for_hopper() -> None:
    """dlrm-v3's token-sum kernel: fp32 rows of 512, a source, four tables (bf16 items' rows and
    fp32 position and age rows) and a scatter, as the forward launches it for history events."""
    consts = dict(D=512, PARTS=4, AT=True, SRC=True, BLOCK_R=hstu.ROWS_PER_PROGRAM)
    types = dict(out_ptr="*fp32", at_ptr="*i64", src_ptr="*fp32", t0="*bf16", t1="*bf16", t2="*fp32", t3="*fp32",
                 i0="*i32", i1="*i64", i2="*i64", i3="*i64")
    assert compiled(COMPILE_ROWS, json.dumps({"kernel": "_rows_sum_fwd", "consts": consts, "types": types}))["cubin"] > 0


#: Launches :func:`dense.linear` on CPU tensors with its kernels swapped for a recorder, compiles
#: the recorded launch for sm_90 and runs ptxas on its PTX for registers and spills (as JSON).
#: argv: a Tiles as JSON, then "fp8" or "bf16". The shape is DLRM-v2's up-projection with its cross
#: step as the fp8 forward runs it (x0 and x_l fp8, the fp8 copy out) or as bf16's does.
COMPILE_LINEAR = PTXAS + LAUNCH + """
import json, sys
import torch, triton
from triton.backends.compiler import GPUTarget
from suite.backends.kernels import dense as dk
tiles, kind = dk.Tiles(**json.loads(sys.argv[1])), sys.argv[2]
dk._linear_tma_kernel, dk._linear_kernel = Recorder(dk._linear_tma_kernel), Recorder(dk._linear_kernel)
fp8 = kind == "fp8"
low = torch.float8_e4m3fn if fp8 else torch.bfloat16
m, n, k = 1024, 3456, 512
x0, xl = torch.zeros(m, n, dtype=low), torch.zeros(m, n, dtype=low)
if fp8:
    dk.linear(torch.zeros(m, k, dtype=low), torch.zeros(n, k, dtype=low), torch.zeros(n), w_scale=torch.ones(n),
              x0=x0, xl=xl, x0_scale=1.0, xl_scale=1.0, out_dtype=None, q_scale=1.0, tiles=tiles)
else:
    dk.linear(torch.zeros(m, k, dtype=low), torch.zeros(n, k, dtype=low), torch.zeros(n), x0=x0, xl=xl, tiles=tiles)
src, options = source(launch)
kernel = triton.compile(src, target=GPUTarget("cuda", 90, 32), options=options)
print(json.dumps({"shared": kernel.metadata.shared, "wgmma": kernel.asm["ptx"].count("wgmma.mma_async"),
                  **ptxas_counts(kernel.asm["ptx"])}))
"""
#: Registers of one SM (sm_90).
SM90_REGISTERS = 65_536
#: The persistent kernel's shapes for the up-projection, the heaviest epilogue: what tune() may
#: pick and what it has.
UP_TILES = [(kind, t) for kind in ("fp8", "bf16") for t in dict.fromkeys(
    [dense.tiles_for(kind == "fp8", 3456, 512),
     *(t for t in dense.CROSS_CANDIDATES[kind] + dense.PERSISTENT_CANDIDATES[kind] if t.persistent)])]


@pytest.mark.parametrize(("kind", "tile"), UP_TILES, ids=lambda x: x if isinstance(x, str) else dense.tiles_text(x))
def test_persistent_up_projection_compiles_with_its_programs_resident_on_an_sm(kind: str, tile: dense.Tiles) -> None:
    """Each persistent tile shape of DLRM-v2's cross-layer up-projection compiles for sm_90 into
    wgmma products, and ``persistent`` programs of it fit one SM at once by registers (ptxas's
    count, 255 at most a thread) and by shared memory: a program that cannot be resident waits for
    another to finish its whole share of the tiles, which would make the kernel half again slower."""
    built = compiled(COMPILE_LINEAR, json.dumps({f: getattr(tile, f) for f in tile.__dataclass_fields__}), kind)
    print(kind, dense.tiles_text(tile), built)
    assert built["wgmma"] > 0
    assert built["regs"] * 32 * tile.num_warps * tile.persistent <= SM90_REGISTERS
    assert built["shared"] * tile.persistent <= SM90_SHARED_BYTES


#: Launches :func:`lookup.pooled` on CPU tensors with its kernel swapped for a recorder, with the
#: block it picks for each case, compiles each for sm_90 and counts, in the PTX, the barriers inside
#: the loop over ids (a sum over ids that crosses warps needs one every step). argv: a JSON list of
#: [row type, scales, dim]; prints a JSON list of {"loops", "barriers", "block"}.
COMPILE_LOOKUP = LAUNCH + """
import json, sys
import torch, triton
from triton.backends.compiler import GPUTarget
from suite.backends.kernels import lookup
lookup._pooled_kernel = Recorder(lookup._pooled_kernel)
def loop_barriers(ptx):
    lines = ptx.splitlines()
    loops, barriers = 0, 0
    for i, line in enumerate(lines):
        if "Loop Header" in line:
            label = line.split(":")[0]
            end = max(j for j, text in enumerate(lines) if "bra" in text and text.strip().endswith(label + ";"))
            loops += 1
            barriers += sum("bar.sync" in text for text in lines[i:end])
    return loops, barriers
out = []
for row_type, scales, dim in json.loads(sys.argv[1]):
    tables = lookup.pack([torch.randn(64, dim) for _ in range(3)], [4, 8, 2], row_type, scales=scales)
    n = 4096
    ids = torch.zeros((n, tables.id_columns), dtype=torch.int32)
    x = torch.zeros((n, (3 + 1) * dim), dtype=torch.bfloat16)
    lookup.pooled(tables, ids, x, dim)
    src, options = source(launch)
    kernel = triton.compile(src, target=GPUTarget("cuda", 90, 32), options=options)
    loops, barriers = loop_barriers(kernel.asm["ptx"])
    block = [launch["kwargs"]["BLOCK_N"], launch["kwargs"]["BLOCK_L"], options["num_warps"]]
    out.append({"loops": loops, "barriers": barriers, "block": block})
print(json.dumps(out))
"""
#: Every row format the fused lookup stores, at the widths of the models it runs (RMC1 and RMC3 32,
#: RMC2 64, DLRM-v2 128).
LOOKUP_CASES = [[row_type, scales, dim] for dim in (32, 64, 128)
                for row_type, scales in (("fp32", "inline"), ("bf16", "inline"), ("fp16", "inline"), ("fp8", "inline"),
                                         ("int8", "inline"), ("fp8", "table"), ("int8", "table"))]


@pytest.fixture(scope="module")
def lookup_builds() -> list[dict]:
    """The fused lookup compiled once for every case of :data:`LOOKUP_CASES`, in one child process."""
    done = subprocess.run([sys.executable, "-c", COMPILE_LOOKUP, json.dumps(LOOKUP_CASES)], capture_output=True, text=True,
                          timeout=600, env={**os.environ, "TRITON_INTERPRET": "0"})
    assert done.returncode == 0, done.stderr[-3000:]
    builds: list[dict] = json.loads(done.stdout.strip().splitlines()[-1])
    return builds


@pytest.mark.parametrize("case", range(len(LOOKUP_CASES)), ids=lambda i: "-".join(map(str, LOOKUP_CASES[i])))
def test_lookup_sums_ids_within_a_warp(lookup_builds: list[dict], case: int) -> None:
    """With the block :func:`lookup.pooled` picks by default, the loop over ids has no barrier: each
    warp holds whole items, so the per-step sum over ids stays in its registers and shuffles. With
    16 items a block, 64-byte bf16 rows put two of four warps on ids and a barrier in every step."""
    built = lookup_builds[case]
    print(LOOKUP_CASES[case], built)
    assert built["loops"] == 1
    assert built["barriers"] == 0


def test_gluon_shapes_refuse_what_the_specialized_kernel_cannot_run() -> None:
    """Specialized warps run order 2 with one or two 64-row consumers, and the turns need two: any
    other combination is refused when the shape is made, naming it."""
    with pytest.raises(ValueError, match=r"specialized warps take order 2 and 64 or 128 rows \(got wg 64x64 s3 o1 ws\)"):
        hstu_wg.WgTile(64, 64, 3, 1, True)
    with pytest.raises(ValueError, match=r"specialized warps take order 2 and 64 or 128 rows \(got wg 256x64 s3 o2 ws\)"):
        hstu_wg.WgTile(256, 64, 3, 2, True)
    with pytest.raises(ValueError, match=r"the ping-pong takes two consumers: specialized, 128 rows \(got wg 64x64 s3 o2 ws pp\)"):
        hstu_wg.WgTile(64, 64, 3, 2, True, True)
    with pytest.raises(ValueError, match="the ping-pong takes two consumers"):
        hstu_wg.WgTile(128, 64, 3, 2, False, True)
    assert hstu_wg.WgTile(128, 64, 4, 2, True, True).num_warps == 4
    assert hstu_wg.WgTile(128, 64, 4, 2, True).maxnreg == 168 and hstu_wg.WgTile(64, 64, 3, 2, True).maxnreg == 128
    assert hstu_wg.WgTile(128, 64).maxnreg is None and hstu_wg.WgTile(128, 64).num_warps == 8
