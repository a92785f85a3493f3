"""suite.backends.kernels against the eager reference.

On a CUDA machine the kernels compile and run on the GPU; elsewhere they run at small sizes under
Triton's CPU interpreter (``TRITON_INTERPRET=1``, which ``conftest.py`` sets before any test module
is collected). Without Triton the module is skipped (CI installs none). Tests marked ``cuda`` need the GPU:
whole-model numerics and the AUC gate through the real harness.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
CUDA = torch.cuda.is_available()
pytest.importorskip("triton")  # without a GPU, under Triton's interpreter (conftest.py switches it on)

from suite.backends.kernels import dense as dk  # noqa: E402
from suite.backends.kernels import fused, lookup  # noqa: E402
from suite.models import ModelSpec, build  # noqa: E402
from suite.models.base import ModelSchema, TableSpec  # noqa: E402
from suite.models.configs import DLRMv2Config  # noqa: E402
from suite.models.dlrm_v2 import DLRMv2  # noqa: E402
from suite.models.init import Init, materialize  # noqa: E402

DEVICE = "cuda" if CUDA else "cpu"
#: Max |fused - embedding_bag on the original fp32 rows| relative to the pooled vectors' scale.
ROW_TOLERANCE = {"fp32": 1e-5, "bf16": 1e-2, "fp16": 2e-3, "fp8": 8e-2, "int8": 2e-2}


def tables(seed: int = 0, rows: tuple[int, ...] = (50, 7, 100, 3), lookups: tuple[int, ...] = (3, 1, 7, 2), dim: int = 32,
           n: int = 37) -> tuple[list[torch.Tensor], list[int], torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    weights = [torch.randn(r, dim, generator=g).to(DEVICE) for r in rows]
    ids = torch.cat([torch.randint(0, r, (n, lk), generator=g, dtype=torch.int32) for r, lk in zip(rows, lookups, strict=False)], dim=1)
    return weights, list(lookups), ids.to(DEVICE)


def eager_pooled(weights: list[torch.Tensor], lookups: list[int], ids: torch.Tensor) -> torch.Tensor:
    cols = np.cumsum([0, *lookups])
    return torch.cat([torch.nn.functional.embedding_bag(ids[:, c:c + lk].long(), w, mode="sum")
                      for w, lk, c in zip(weights, lookups, cols, strict=False)], dim=1)


@pytest.mark.parametrize(("row_type", "scales"), [(t, "inline") for t in sorted(lookup.ROW_TYPES)]
                         + [(t, s) for t in ("fp8", "int8") for s in ("apart", "table")])
def test_pooled_lookup_matches_embedding_bag(row_type: str, scales: str) -> None:
    weights, lookups, ids = tables()
    packed = lookup.pack(weights, lookups, row_type, scales=scales)
    trailer = 0 if scales == "table" else lookup.TRAILER_BYTES[row_type]
    assert packed.row_bytes == 32 * {"fp32": 4, "bf16": 2, "fp16": 2}.get(row_type, 1) + trailer
    assert packed.scale_layout == (scales if row_type in ("fp8", "int8") else "inline")
    got = lookup.pooled(packed, ids, out_dtype=torch.float32)
    # Exactly the stored rows, summed in fp32 ...
    torch.testing.assert_close(got, lookup.pooled_reference(packed, ids), rtol=1e-5, atol=1e-5)
    # ... and within the format's rounding of the original rows.
    want = eager_pooled(weights, lookups, ids)
    # one scale per table rounds a small row on the whole table's grid: int8 loses up to 2x per row
    bound = ROW_TOLERANCE[row_type] * (2 if scales == "table" and row_type == "int8" else 1)
    assert (got - want).abs().max().item() <= bound * want.abs().max().item()


def test_pooled_lookup_writes_behind_col0_in_the_dense_dtype() -> None:
    weights, lookups, ids = tables(n=20)
    packed = lookup.pack(weights, lookups, "int8")
    out = torch.full((20, 16 + 4 * 32), 7.0, dtype=torch.bfloat16, device=DEVICE)
    lookup.pooled(packed, ids, out, col0=16, block_n=8, block_l=2)
    assert torch.equal(out[:, :16], torch.full((20, 16), 7.0, dtype=torch.bfloat16, device=DEVICE))
    torch.testing.assert_close(out[:, 16:].float(), lookup.pooled_reference(packed, ids), rtol=1e-2, atol=2e-2)


def test_pooled_lookup_writes_the_fp8_copy_in_the_same_launch() -> None:
    weights, lookups, ids = tables(n=20)
    packed = lookup.pack(weights, lookups, "int8")
    width = 8 + 4 * 32
    out = torch.zeros((20, width), dtype=torch.bfloat16, device=DEVICE)
    q = torch.zeros((20, width), dtype=torch.float8_e4m3fn, device=DEVICE)
    lookup.pooled(packed, ids, out, col0=8, q_out=q, q_scale=0.05)
    ref = lookup.pooled_reference(packed, ids)
    want = dk.quantize(ref, 0.05).float()
    assert torch.equal(q[:, :8].float(), torch.zeros((20, 8), device=DEVICE))  # in front: untouched
    # fp8 of the fp32 sums: equal up to one e4m3 step where a sum sits on a rounding boundary
    assert ((q[:, 8:].float() - want).abs() <= want.abs() / 8 + 1e-6).all()
    torch.testing.assert_close(out[:, 8:].float(), ref, rtol=1e-2, atol=2e-2)
    q2 = torch.zeros_like(q)
    assert lookup.pooled(packed, ids, None, col0=8, q_out=q2, q_scale=0.05, write_out=False) is None
    assert torch.equal(q2.view(torch.uint8), q.view(torch.uint8))


def test_cross_step_reads_fp8_operands_and_folds_the_last_layer() -> None:
    x0, xl, down, up, bias = cross_inputs()
    want = dk.cross_reference(x0, xl, down, up, bias)
    s0, sl = x0.abs().max().item() / 448, xl.abs().max().item() / 448
    x0q, xlq = dk.quantize(x0, s0), dk.quantize(xl, sl)
    h = torch.nn.functional.linear(xl, down)
    got, _ = dk.linear(h, up, bias, x0=x0q, x0_scale=s0, xl=xlq, xl_scale=sl, out_dtype=torch.float32, tiles=SMALL)
    assert got is not None
    assert ((got - want).norm() / want.norm()).item() < 0.08
    # x_l given as x0 itself is read once, with the same result as a copy of it
    same, _ = dk.linear(h, up, bias, x0=x0, xl=x0, out_dtype=torch.float32, tiles=SMALL)
    apart, _ = dk.linear(h, up, bias, x0=x0, xl=x0.clone(), out_dtype=torch.float32, tiles=SMALL)
    torch.testing.assert_close(same, apart)
    # a 1-wide layer after a ReLU layer, in its epilogue
    w_last = torch.linspace(-1, 1, up.shape[0], device=DEVICE)
    logits, _ = dk.linear(h, up, bias, relu=True, last=(w_last, 0.5), tiles=SMALL)
    ref = torch.relu(torch.nn.functional.linear(h, up, bias)) @ w_last + 0.5
    assert logits is not None and logits.shape == (h.shape[0],)
    torch.testing.assert_close(logits, ref, rtol=2e-2, atol=2e-2)


def test_pack_refuses_tables_of_different_dims() -> None:
    with pytest.raises(ValueError, match=r"^tables must share one dim \(got \[8, 16\]\)$"):
        lookup.pack([torch.zeros(4, 8), torch.zeros(4, 16)], [1, 1], "bf16")


def cross_inputs(m: int = 40, width: int = 96, rank: int = 32) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(1)
    x0 = torch.randn(m, width, generator=g)
    xl = torch.randn(m, width, generator=g)
    down = torch.randn(rank, width, generator=g) / width**0.5
    up = torch.randn(width, rank, generator=g) / rank**0.5
    bias = torch.randn(width, generator=g) / 10
    return tuple(t.to(DEVICE) for t in (x0, xl, down, up, bias))


SMALL = dk.Tiles(block_m=32, block_n=32, block_k=32, group_m=2, num_warps=4, num_stages=2)


@pytest.mark.parametrize("prefetch", [False, True])
def test_cross_layer_in_one_matmul_epilogue_matches_eager(prefetch: bool) -> None:
    x0, xl, down, up, bias = cross_inputs()
    want = dk.cross_reference(x0, xl, down, up, bias)
    dt = torch.bfloat16
    h, _ = dk.linear(xl.to(dt), down.to(dt), out_dtype=dt, tiles=SMALL)
    assert h is not None
    tiles = dataclasses.replace(SMALL, prefetch=prefetch)
    got, _ = dk.linear(h, up.to(dt), bias, x0=x0.to(dt), xl=xl.to(dt), out_dtype=torch.float32, tiles=tiles)
    assert got is not None
    assert (got - want).abs().max().item() <= 0.02 * want.abs().max().item()
    # The same step as one elementwise kernel after a plain GEMM.
    y = torch.nn.functional.linear(torch.nn.functional.linear(xl, down), up)
    epi, _ = dk.epilogue(y, bias, x0=x0, xl=xl)
    torch.testing.assert_close(epi, want, rtol=1e-4, atol=1e-4)


def test_linear_relu_epilogue_and_fp8_operands() -> None:
    _, xl, down, _, _ = cross_inputs()
    bias = torch.linspace(-1, 1, down.shape[0], device=DEVICE)
    want = torch.relu(torch.nn.functional.linear(xl, down, bias))
    got, _ = dk.linear(xl, down, bias, relu=True, out_dtype=torch.float32, tiles=SMALL)
    torch.testing.assert_close(got, want, rtol=2e-2, atol=2e-2)  # fp32 dots are TF32 on the GPU
    a_scale = xl.abs().max().item() / lookup.FP8_MAX
    wq, ws = dk.quantize_weight(down)
    got8, _ = dk.linear(dk.quantize(xl, a_scale), wq, bias, relu=True, a_scale=a_scale, w_scale=ws,
                        out_dtype=torch.float32, tiles=SMALL)
    assert got8 is not None
    assert ((got8 - want).norm() / want.norm()).item() < 0.06


@pytest.mark.parametrize("tiles", [dataclasses.replace(SMALL, persistent=1), dataclasses.replace(SMALL, persistent=2, flatten=True),
                                   dataclasses.replace(SMALL, persistent=1, warp_specialize=True),
                                   dataclasses.replace(SMALL, persistent=2, tma_epilogue=True),
                                   dataclasses.replace(SMALL, persistent=2, tma_epilogue=True, prefetch=True),
                                   dataclasses.replace(SMALL, persistent=1, prefetch=True),
                                   dataclasses.replace(SMALL, persistent=2, tma_epilogue=True, subtile=True),
                                   dataclasses.replace(SMALL, persistent=2, flatten=True, tma_epilogue=True, subtile=True),
                                   dataclasses.replace(SMALL, persistent=1, prefetch=True, subtile=True)], ids=dk.tiles_text)
def test_persistent_tma_kernel_computes_what_the_pointer_kernel_does(tiles: dk.Tiles) -> None:
    """The persistent TMA kernel, with every epilogue the forward asks of it (the cross step on fp8
    copies, layer 0's x_l that is x0 itself, ReLU with the fp8 copy out, bias alone), writes what
    :func:`dense.linear`'s pointer kernel writes; M is not a multiple of the tile (TMA fills past
    the end with zeros). With ``prefetch`` x0 and x_l are read before the K loop; with ``subtile``
    the epilogue runs on two halves of the tile."""
    x0, xl, down, up, bias = cross_inputs()
    h = torch.nn.functional.linear(xl, down)
    s0, sl, sh = (x.abs().max().item() / lookup.FP8_MAX for x in (x0, xl, h))
    hq, x0q, xlq = dk.quantize(h, sh), dk.quantize(x0, s0), dk.quantize(xl, sl)
    uq, us = dk.quantize_weight(up)
    cases = [
        (hq, uq, {"bias": bias, "a_scale": sh, "w_scale": us, "x0": x0q, "x0_scale": s0, "xl": xlq, "xl_scale": sl,
                  "out_dtype": None, "q_scale": 0.05}),
        (hq, uq, {"bias": bias, "a_scale": sh, "w_scale": us, "x0": x0q, "x0_scale": s0, "xl": x0q, "xl_scale": s0,
                  "out_dtype": torch.bfloat16, "q_scale": 0.05}),
        (hq, uq, {"bias": bias, "a_scale": sh, "w_scale": us, "relu": True, "out_dtype": torch.float32, "q_scale": 0.05}),
        (h.to(torch.bfloat16), up.to(torch.bfloat16), {"bias": bias, "x0": x0.to(torch.bfloat16), "xl": xl.to(torch.bfloat16),
                                                       "out_dtype": torch.float32}),
    ]
    for a, w, kw in cases:
        want = dk.linear(a, w, tiles=SMALL, **kw)
        got = dk.linear(a, w, tiles=tiles, **kw)
        for g, ref in zip(got, want, strict=True):
            assert (g is None) == (ref is None)
            if ref is not None and ref.dtype == torch.float8_e4m3fn:  # one e4m3 step where a sum sits on a boundary
                assert ((g.float() - ref.float()).abs() <= ref.float().abs() / 8 + 1e-6).all()
            elif ref is not None:
                torch.testing.assert_close(g.float(), ref.float(), rtol=1e-3, atol=1e-3)


def test_tune_keeps_only_tile_shapes_whose_outputs_agree() -> None:
    """:func:`dense.outputs_agree`, which :func:`dense.tune` asks of every candidate before timing
    it: another tile shape's outputs pass; a garbled tile, a missing fp8 copy or an fp8 copy off by
    more than one e4m3 step do not."""
    x0, xl, down, up, bias = cross_inputs()
    h = torch.nn.functional.linear(xl, down)
    sh = h.abs().max().item() / lookup.FP8_MAX
    uq, us = dk.quantize_weight(up)
    kw = {"bias": bias, "a_scale": sh, "w_scale": us, "out_dtype": torch.bfloat16, "q_scale": 0.05}
    want = dk.linear(dk.quantize(h, sh), uq, tiles=SMALL, **kw)
    got = dk.linear(dk.quantize(h, sh), uq, tiles=dataclasses.replace(SMALL, persistent=2, tma_epilogue=True, subtile=True), **kw)
    assert dk.outputs_agree(got, want)
    out, q = got
    assert out is not None and q is not None
    garbled = out.clone()
    garbled[:16, :16] = 0  # one tile lost
    assert not dk.outputs_agree((garbled, q), want)
    assert not dk.outputs_agree((out, None), want)
    doubled = (q.float() * 2).clamp(-lookup.FP8_MAX, lookup.FP8_MAX).to(torch.float8_e4m3fn)
    assert not dk.outputs_agree((out, doubled), want)


def small_dlrm_v2() -> tuple[torch.nn.Module, ModelSchema, torch.Tensor, list[torch.Tensor]]:
    """A narrow DLRM-v2 (same structure as MLPerf's, small widths) and a batch for it."""
    config = DLRMv2Config(name="dlrm-v2", module="suite.models.dlrm_v2:DLRMv2", rows=(40, 9, 300), hotness=(3, 1, 10),
                          dim=16, bottom=(13, 32, 16), cross_layers=2, low_rank=16, top=(32, 16, 1))
    schema = ModelSchema(model="dlrm-v2", dense=13, tables=tuple(
        TableSpec(name=f"t{i}", rows=r, dim=16, lookups=h, multi_hot=True) for i, (r, h) in enumerate(zip(config.rows, config.hotness, strict=False))))
    init = Init()
    with torch.device("meta"):
        model = DLRMv2(config, schema, init)
    model = materialize(model, init, 3)
    g = torch.Generator().manual_seed(4)
    dense = torch.rand(48, 13, generator=g) * 3
    sparse = [torch.randint(0, t.rows, (48, t.lookups), generator=g, dtype=torch.int32) for t in schema.tables]
    return model, schema, dense, sparse


@pytest.mark.parametrize(("dense", "rows", "gemm", "tolerance", "extra"), [
    ("bf16", "bf16", "triton", 0.03, {}),
    ("bf16", "int8", "cublas", 0.04, {}),
    ("bf16", "bf16", "triton", 0.03, {"fuse_last": True}),
    ("fp8", "int8", "triton", 0.3, {}),
    ("fp8", "int8", "triton", 0.3, {"residual": "x0-fp8", "fuse_last": True}),
    ("fp8", "int8", "triton", 0.35, {"residual": "fp8"}),
    ("fp8", "fp8", "triton", 0.35, {"residual": "fp8", "fuse_last": True, "row_scales": "table"}),  # fp8's defaults
    pytest.param("fp8", "int8", "cublas", 0.3, {}, marks=pytest.mark.cuda),
])
def test_fused_dlrm_v2_forward_matches_eager(dense: str, rows: str, gemm: str, tolerance: float, extra: dict) -> None:
    if gemm == "cublas" and dense == "fp8" and not CUDA:
        pytest.skip("cuBLAS's fp8 GEMM needs a CUDA GPU")
    model, schema, x, ids = small_dlrm_v2()
    with torch.inference_mode():
        want = model(x, ids)
    bf = model.to(device=DEVICE, dtype=torch.bfloat16)
    f = fused.fuse(bf, schema, rows=rows, dense=dense, gemm=gemm, **extra)
    assert f.describe()["rows"] == rows and ("calibration" in f.describe()) == (dense == "fp8")
    with torch.inference_mode():
        got = f(x.to(DEVICE, torch.bfloat16), [i.to(DEVICE) for i in ids]).float().cpu()
    # Root mean square distance relative to the logits' spread: how far a precision may move them.
    rms = (got - want).pow(2).mean().sqrt().item() / want.std().item()
    print(f"small dlrm-v2 {dense} {rows} {gemm}: rms {rms:.4f} std, max {(got - want).abs().max().item() / want.std().item():.4f}")
    assert rms <= tolerance


@pytest.mark.cuda
def test_tune_with_auto_gemm_picks_per_layer_and_keeps_the_forward() -> None:
    """``gemm=auto``: ``tune`` times Triton's tiles and cuBLAS plus the epilogue kernel for every
    fp8 matmul and records the faster; the forward over the mix still matches eager."""
    model, schema, x, ids = small_dlrm_v2()
    with torch.inference_mode():
        want = model(x, ids)
    f = fused.fuse(model.to(device=DEVICE, dtype=torch.bfloat16), schema, rows="int8", dense="fp8", gemm="auto")
    try:
        best = f.tune(512)
        assert set(best) == {name for name, _ in f.layers()}
        assert set(f.describe()["gemms"].values()) <= {"triton", "cublas"}
        with torch.inference_mode():
            got = f(x.to(DEVICE, torch.bfloat16), [i.to(DEVICE) for i in ids]).float().cpu()
        assert (got - want).pow(2).mean().sqrt().item() / want.std().item() <= 0.3
    finally:
        fused.AUTO_GEMM.clear()


def test_fuse_refuses_what_it_cannot_run() -> None:
    from suite.errors import BackendUnavailableError, UnknownNameError

    spec = ModelSpec(name="ncf", scale="tiny")
    with pytest.raises(BackendUnavailableError, match=r"run \['dlrm-rmc1', 'dlrm-rmc2', 'dlrm-rmc3', 'dlrm-v2'\] only \(got 'ncf'\)$"):
        fused.for_backend(build(spec), spec, "fp8", {})
    spec = ModelSpec(name="dlrm-rmc1", scale="tiny")
    with pytest.raises(UnknownNameError) as info:
        fused.for_backend(build(spec), spec, "fp8", {"rows": "int4"})
    assert str(info.value) == "'rows' must be one of ['bf16', 'fp16', 'fp8', 'int8'] (got 'int4')"


# --- on the GPU only -------------------------------------------------------------------------------------


@pytest.mark.cuda
@pytest.mark.parametrize(("precision", "options", "bound"), [
    ("fp8", {}, 0.25),
    ("fp8", {"residual": "fp8", "fuse_last": "1"}, 0.25),
    ("fp8", {"rows": "fp8"}, 0.3),
    ("bf16", {"fused": "1"}, 0.05),
    ("bf16", {"fused": "1", "rows": "int8", "gemm": "cublas"}, 0.06),
])
def test_dlrm_v2_forward_within_distance_of_fp32(precision: str, options: dict[str, str], bound: float) -> None:
    """MLPerf's DLRM-v2 (tiny scale): the fused forward's logits within ``bound`` x their std of
    fp32's, as a root mean square over 2048 items (fp8's measured figure is about 0.15: an e4m3
    value carries 3 mantissa bits, and seven matmuls in a row each round their input)."""
    from suite.datasets import multihot, synthetic

    spec = ModelSpec(name="dlrm-v2", scale="tiny")
    raw = synthetic.features(spec.schema, 2048, np.random.default_rng(5))
    batch = multihot.model_inputs(raw, spec.schema)
    dense = torch.from_numpy(batch.dense).cuda()
    sparse = [torch.from_numpy(np.ascontiguousarray(s)).cuda() for s in batch.sparse]
    ref = build(spec).cuda()
    with torch.inference_mode():
        want = ref(dense, sparse).float()
    f = fused.for_backend(build(spec).cuda().to(torch.bfloat16), spec, precision, options)
    with torch.inference_mode():
        got = f(dense.to(torch.bfloat16), sparse).float()
    rms = ((got - want).pow(2).mean().sqrt() / want.std()).item()
    corr = float(np.corrcoef(got.cpu().numpy(), want.cpu().numpy())[0, 1])
    print(f"dlrm-v2 {precision} {options}: rms {rms:.4f} std, corr {corr:.5f}")
    assert rms <= bound


@pytest.mark.cuda
@pytest.mark.parametrize(("precision", "options", "gate"), [
    ("fp8", (), 0.99), ("fp8", (("residual", "fp8"), ("fuse_last", "1")), 0.99), ("bf16", (("fused", "1"),), 0.999)])
def test_fused_backend_passes_the_auc_gate(data_dir: Path, results: Path, precision: str, options: tuple, gate: float) -> None:
    """Accuracy mode through LoadGen and the harness: AUC >= gate x the teacher's."""
    from conftest import smoke_config

    from suite.config import Mode, Scenario
    from suite.runner import run

    for model in ("dlrm-v2", "dlrm-rmc1"):
        config = smoke_config(results / f"{model}-{precision}", model=ModelSpec(name=model, scale="tiny"), backend="torch-cuda",
                              scenario=Scenario.OFFLINE, mode=Mode.ACCURACY, rows=4096)
        config = dataclasses.replace(config, precision=precision, backend_options=options)
        acc = run(config).data["accuracy"]
        print(f"{model} {precision} {options}: AUC {acc['auc']:.5f} reference {acc['reference_auc']}")
        assert acc["auc"] >= gate * float(np.mean(acc["reference_auc"])), acc


@pytest.mark.parametrize(("history", "candidates", "dtype", "tolerance"), [
    ((16, 3, 0), (4, 1, 2), torch.float32, 1e-4), ((70, 2, 33), (20, 1, 40), torch.float32, 1e-4),
    pytest.param((200, 5, 900), (64, 2048, 7), torch.bfloat16, 2e-2, marks=pytest.mark.cuda),
])
def test_hstu_attention_kernel_matches_the_plain_path(history: tuple[int, ...], candidates: tuple[int, ...],
                                                      dtype: torch.dtype, tolerance: float) -> None:
    """Jagged requests (each its own history and candidate count, packed without padding): the
    kernel equals the plain path, which pads the batch to its longest request."""
    from suite.backends.kernels.hstu import hstu_attention
    from suite.models import dlrm_v3

    g = torch.Generator().manual_seed(0)
    hist, cand = torch.tensor(history), torch.tensor(candidates)
    scale = int((1 + hist + cand).max()) + 5
    jag = dlrm_v3.Jagged.of(hist.to(DEVICE), cand.to(DEVICE), scale)
    total = int(jag.offsets[-1])
    q, k, v = (torch.randn(total, 4, 16, generator=g).to(DEVICE, dtype) for _ in range(3))
    want = dlrm_v3.jagged_attention(q.float(), k.float(), v.float(), jag, 0.25)
    got = hstu_attention(q, k, v, jag.offsets, jag.history, jag.max_len, 0.25, scale)
    assert got.dtype == torch.float32  # the fp32 sums are not rounded to the inputs' 16 bits
    scale_v = want.abs().max().item()
    assert (got - want).abs().max().item() <= tolerance * max(scale_v, 1e-6)


@pytest.mark.parametrize("tile", [None, (32, 16, 4, 2), (16, 32, 4, 3), (32, 16, 4, 2, True, True), (16, 16, 4, 1, False, True),
                                  (32, 16, 4, 2, True, True, True), (16, 32, 4, 3, False, False, True),
                                  (32, 16, 4, 2, True, True, True, 128)])
def test_hstu_candidate_rows_alone_match_the_plain_path(tile: tuple[int, ...] | None) -> None:
    """The last layer's form: q for the candidate rows only, against every key, equals those rows of
    the plain path; with tile shapes other than the default (the unmasked bulk, the masked tail and
    each candidate's own key all meet in requests of 70 to 110 tokens), launched rows-first, with
    q's block, the keys and values and the output through tensor descriptors, and under a
    register cap."""
    from suite.backends.kernels.hstu import Tile, hstu_attention
    from suite.models import dlrm_v3

    g = torch.Generator().manual_seed(1)
    hist, cand = torch.tensor([70, 0, 33, 95]), torch.tensor([20, 3, 40, 1])
    scale = int((1 + hist + cand).max()) + 5
    jag = dlrm_v3.Jagged.of(hist.to(DEVICE), cand.to(DEVICE), scale)
    q, k, v = (torch.randn(int(jag.offsets[-1]), 2, 16, generator=g).to(DEVICE) for _ in range(3))
    want = dlrm_v3.jagged_attention(q, k, v, jag, 0.25)
    rows = jag.candidate_rows()
    shape = None if tile is None else Tile(*tile)
    whole = hstu_attention(q, k, v, jag.offsets, jag.history, jag.max_len, 0.25, scale, tile=shape)
    alone = hstu_attention(q[rows], k, v, jag.offsets, jag.history, jag.max_len, 0.25, scale,
                           q_offsets=jag.candidate_offsets, max_queries=jag.max_candidates, tile=shape)
    plain_alone = dlrm_v3.jagged_attention(q[rows], k, v, jag, 0.25, candidates=True)
    assert alone.shape == (int(cand.sum()), 2, 16)
    assert torch.allclose(whole, want, atol=1e-5, rtol=1e-4)
    assert torch.allclose(alone, want[rows], atol=1e-5, rtol=1e-4)
    assert torch.equal(plain_alone, want[rows])


def _gluon_requests(seed: int) -> tuple[torch.Tensor, torch.Tensor, Any, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(history counts, candidate counts, Jagged, q, k, v) on CUDA for the Gluon kernel's tests:
    requests with no history, no candidates, fewer candidates than a block, and one MLPerf-size;
    q, k, v bf16 views of one projection's output, as the model makes them."""
    from suite.models import dlrm_v3

    g = torch.Generator().manual_seed(seed)
    hist = torch.tensor([0, 63, 64, 65, 130, 200, 5, 6500])
    cand = torch.tensor([3, 1, 64, 100, 7, 129, 0, 2048])
    jag = dlrm_v3.Jagged.of(hist.cuda(), cand.cuda(), int((1 + hist + cand).max()))
    qkv = (torch.randn(int(jag.offsets[-1]), 3, 4, 128, generator=g) / 4).cuda().to(torch.bfloat16)
    return hist, cand, jag, qkv[:, 0], qkv[:, 1], qkv[:, 2]


@pytest.mark.cuda
@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
@pytest.mark.parametrize("tile", [(64, 64, 3, 0), (64, 64, 3, 1), (64, 64, 3, 2), (128, 64, 2, 2), (128, 64, 4, 2, True, True),
                                  (128, 64, 4, 2, True), (64, 64, 3, 2, True)])
def test_hstu_gluon_kernel_matches_the_plain_path(tile: tuple[int | bool, ...]) -> None:
    """The Hopper kernel with asynchronous products (bf16, heads of 128), every row and the
    candidate rows alone, against the plain path in fp32 and against the Triton kernel: requests
    whose history ends inside, at and past a block's edge, a user row alone, one candidate, more
    candidates than a block, and one MLPerf-size request; with specialized warps (one or two
    consumers, in turns or free), blocks whose second consumer has no rows."""
    from suite.backends.kernels import hstu, hstu_wg
    from suite.models import dlrm_v3

    if torch.cuda.get_device_capability()[0] != 9:
        pytest.skip("the Gluon kernel is for sm_90")
    hist, cand, jag, q, k, v = _gluon_requests(5)
    assert hstu_wg.supported(q, k, v)
    shape = hstu_wg.WgTile(*tile)
    got = hstu_wg.hstu_attention_wg(q, k, v, jag.offsets, jag.history, jag.max_len, 0.3, jag.max_len, tile=shape)
    triton_out = hstu.hstu_attention(q, k, v, jag.offsets, jag.history, jag.max_len, 0.3, jag.max_len)
    rows = jag.candidate_rows()
    qc = q[rows]
    alone = hstu_wg.hstu_attention_wg(qc, k, v, jag.offsets, jag.history, jag.max_candidates, 0.3, jag.max_len,
                                      q_offsets=jag.candidate_offsets, tile=shape)
    for part in range(0, len(hist), 4):  # the plain path pads every request to the longest: a few at a time
        lo, hi = int(jag.offsets[part]), int(jag.offsets[part + 4]) if part + 4 < len(hist) else int(jag.offsets[-1])
        sub = dlrm_v3.Jagged.of(hist[part:part + 4].cuda(), cand[part:part + 4].cuda(), jag.max_len)
        want = dlrm_v3.jagged_attention(q[lo:hi].float(), k[lo:hi].float(), v[lo:hi].float(), sub, 0.3)
        bound = 2e-2 * want.abs().max().item()
        assert (got[lo:hi] - want).abs().max().item() <= bound, (part, tile)
    assert (got - triton_out).abs().max().item() <= 1e-2 * triton_out.abs().max().item()
    assert torch.allclose(alone, got[rows], atol=1e-5, rtol=1e-4)
    # bf16 out: the same fp32 sums, each rounded once on the way out
    got16 = hstu_wg.hstu_attention_wg(q, k, v, jag.offsets, jag.history, jag.max_len, 0.3, jag.max_len, tile=shape,
                                      out_dtype=torch.bfloat16)
    alone16 = hstu_wg.hstu_attention_wg(qc, k, v, jag.offsets, jag.history, jag.max_candidates, 0.3, jag.max_len,
                                        q_offsets=jag.candidate_offsets, tile=shape, out_dtype=torch.bfloat16)
    assert got16.dtype == alone16.dtype == torch.bfloat16
    assert torch.equal(got16, got.to(torch.bfloat16)) and torch.equal(alone16, alone.to(torch.bfloat16)), tile


def test_hstu_quantize_heads_scales_each_token_and_head() -> None:
    """quantize_heads: a strided (T, heads, D) view into e4m3 with one scale per token and head,
    laid out (heads, T), each row's largest on 448; dequantized within half an e4m3 step."""
    from suite.backends.kernels import hstu

    g = torch.Generator().manual_seed(6)
    qkv = (torch.randn(37, 3, 4, 128, generator=g) * torch.logspace(-2, 2, 37)[:, None, None, None]).to(DEVICE)
    qkv[3, 1, 2] = 0
    x = qkv[:, 1]
    x8, scale = hstu.quantize_heads(x)
    assert x8.shape == (37, 4, 128) and x8.is_contiguous() and scale.shape == (4, 37)
    want = x.abs().amax(dim=-1).t() / 448
    assert torch.allclose(scale[want > 0], want[want > 0], rtol=1e-6) and (scale > 0).all()
    back = x8.float() * scale.t()[..., None]
    assert torch.all((back - x).abs() <= 2.0 ** -4 * x.abs() + scale.t()[..., None] * 2.0 ** -9)
    assert back[3, 2].abs().max() == 0


def test_hstu_quantize_spans_scales_each_request_and_head() -> None:
    """quantize_spans: keys packed by request into e4m3 with one scale per head and request (its
    largest magnitude in the request over 448), laid out (heads, requests); a request of zeros
    included, and requests longer than one program's chunk."""
    from suite.backends.kernels import hstu

    g = torch.Generator().manual_seed(7)
    lengths = torch.tensor([5, 130, 0, 64, 1])
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)]).to(DEVICE)
    qkv = torch.randn(int(lengths.sum()), 3, 4, 128, generator=g).to(DEVICE)
    qkv[:, 1] *= torch.repeat_interleave(torch.tensor([1.0, 30.0, 1.0, 0.01, 0.0]), lengths)[:, None, None].to(DEVICE)
    k = qkv[:, 1]
    k8, scale = hstu.quantize_spans(k, offsets, int(lengths.max()))
    assert k8.shape == k.shape and k8.is_contiguous() and scale.shape == (4, 5)
    for b in range(5):
        lo, hi = int(offsets[b]), int(offsets[b + 1])
        span = k[lo:hi]
        want = span.abs().amax(dim=(0, 2)) / 448 if hi > lo else torch.zeros(4, device=DEVICE)
        assert torch.allclose(scale[:, b], want, rtol=1e-6, atol=0), b
        if hi > lo:
            back = k8[lo:hi].float() * scale[:, b][None, :, None]
            step = scale[:, b][None, :, None] * 2.0 ** -9
            assert torch.all((back - span).abs() <= 2.0 ** -4 * span.abs() + step), b
    # given per-head scales: one pass, every request by its head's scale, past 448 clamped
    given = torch.tensor([0.5, 0.01, 2.0, 0.1], device=DEVICE)
    k8g, scale_g = hstu.quantize_spans(k, offsets, int(lengths.max()), given=given)
    assert scale_g.shape == (4, 5) and torch.equal(scale_g, given[:, None].expand(4, 5))
    want8 = (k.float() / given[None, :, None]).clamp(-448, 448).to(torch.float8_e4m3fn).float()
    assert torch.allclose(k8g.float(), want8, rtol=2.0 ** -3, atol=2.0 ** -9)
    assert k8g.float().abs().max() <= 448 and (k.float() / given[None, :, None]).abs().max() > 448
    # whole rows a program where a token's heads are contiguous (k above), a head at a time where not
    apart = torch.zeros(k.shape[0], 4, 256, device=DEVICE)[:, :, :128]
    apart.copy_(k)
    assert apart.stride(1) != 128 and torch.equal(apart, k)
    k8a, _ = hstu.quantize_spans(apart, offsets, int(lengths.max()), given=given)
    assert torch.equal(k8a.view(torch.uint8), k8g.view(torch.uint8))


def test_stu_key_bounds_hold_every_key() -> None:
    """STULayer.key_bounds: no key of any token exceeds its head's bound (LN(x) . w + b with
    |LN(x)| <= sqrt(dim)), for tokens of any scale, and the bound is not loose beyond reason."""
    from suite.models import dlrm_v3

    layer = next(m for m in build(ModelSpec(name="dlrm-v3", scale="tiny")).modules() if isinstance(m, dlrm_v3.STULayer))
    g = torch.Generator().manual_seed(8)
    x = torch.randn(500, layer.uvqk.in_features, generator=g) * torch.logspace(-3, 3, 500)[:, None]
    x[0] = 0
    h, lin, qk = layer.heads, layer.lin, layer.qk
    with torch.no_grad():
        keys = layer.product(layer.source(x), 2 * lin * h + qk * h, 2 * lin * h + 2 * qk * h).view(-1, h, qk)
        bound = layer.key_bounds()
    top = keys.abs().amax(dim=(0, 2))
    assert bound.shape == (h,) and torch.all(top <= bound) and torch.all(bound <= 50 * top)
    # the worst case is reached: x along a head's largest weight row
    w = layer.uvqk.weight[2 * lin * h + qk * h:].detach()
    row = int(w.norm(dim=1).argmax())
    with torch.no_grad():
        worst = layer.product(layer.source(w[row:row + 1]), 2 * lin * h + qk * h + row, 2 * lin * h + qk * h + row + 1)
    assert float(worst.abs()) >= 0.5 * float(bound[row // qk])


def test_stu_value_bounds_hold_every_value() -> None:
    """STULayer.value_bounds: key_bounds' argument for v's channels of uvqk; no value of any token
    exceeds its head's bound, and the bound is not loose beyond reason."""
    from suite.models import dlrm_v3

    layer = next(m for m in build(ModelSpec(name="dlrm-v3", scale="tiny")).modules() if isinstance(m, dlrm_v3.STULayer))
    g = torch.Generator().manual_seed(9)
    x = torch.randn(500, layer.uvqk.in_features, generator=g) * torch.logspace(-3, 3, 500)[:, None]
    h, lin = layer.heads, layer.lin
    with torch.no_grad():
        values = layer.product(layer.source(x), lin * h, 2 * lin * h).view(-1, h, lin)
        bound = layer.value_bounds()
    top = values.abs().amax(dim=(0, 2))
    assert bound.shape == (h,) and torch.all(top <= bound) and torch.all(bound <= 50 * top)
    assert not torch.equal(bound, layer.key_bounds())


def test_hstu_quantize_v_columns_lays_out_chunks_for_the_8bit_p() -> None:
    """quantize_v_columns: v as e4m3 channels by tokens, each request from a multiple of 32
    columns, the tokens of each chunk of 32 in the order the Gluon kernel's 8-bit p holds its
    columns (position m holds token pi(m)), padding zeros; a value is its head's quantized value,
    past 448 times the scale clamped. Requests shorter than, equal to and longer than a chunk, and
    an empty one."""
    from suite.backends.kernels import hstu

    g = torch.Generator().manual_seed(11)
    lengths = torch.tensor([5, 32, 0, 70, 1])
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)]).to(DEVICE)
    uvqk = torch.randn(int(lengths.sum()), 3, 4, 128, generator=g).to(DEVICE)
    v = uvqk[:, 2]  # a strided view, as the projection's split gives it
    scale = torch.tensor([0.01, 0.002, 0.05, 0.004], device=DEVICE)
    # Memory torch leaves uninitialized is filled with NaN (0x7f in e4m3): a column the pass and its
    # zeroing miss fails the comparisons below.
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        vt, columns = hstu.quantize_v_columns(v, offsets, int(lengths.max()), scale)
    finally:
        torch.use_deterministic_algorithms(deterministic)
    assert vt.dtype == torch.float8_e4m3fn and vt.shape[:2] == (4, 128) and vt.shape[2] % 16 == 0
    assert columns.tolist() == [0, 32, 64, 64, 160, 192] and vt.shape[2] >= 192
    m = torch.arange(32)
    pi = (m & 1) | (((m >> 2) & 1) << 1) | (((m >> 3) & 1) << 2) | (((m >> 1) & 1) << 3) | (m & 16)
    assert sorted(pi.tolist()) == list(range(32)) and pi[:4].tolist() == [0, 1, 8, 9]
    want = torch.zeros(4, 128, vt.shape[2])
    q8 = (v.float().cpu() / scale.cpu()[None, :, None]).clamp(-448, 448).to(torch.float8_e4m3fn).float()
    for b in range(5):
        lo, n, col = int(offsets[b]), int(lengths[b]), int(columns[b])
        for c0 in range(0, n, 32):
            for pos in range(32):
                t = c0 + int(pi[pos])
                if t < n:
                    want[:, :, col + c0 + pos] = q8[lo + t].reshape(4, 128)
    got = vt.float().cpu()
    assert torch.allclose(got, want, rtol=2.0 ** -3, atol=0) and torch.equal(got == 0, want == 0)
    assert got.abs().max() <= 448 and (v.float().cpu() / scale.cpu()[None, :, None]).abs().max() > 448
    # heads not side by side (a head's channels apart from the next's): the same columns
    apart = torch.zeros(v.shape[0], 4, 256, device=DEVICE)[:, :, :128]
    apart.copy_(v)
    assert apart.stride(1) != 128
    assert torch.equal(hstu.quantize_v_columns(apart, offsets, int(lengths.max()), scale)[0].view(torch.uint8),
                       vt.view(torch.uint8))


@pytest.mark.cuda
@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
@pytest.mark.parametrize("tile", [(128, 64, 4, 2, True), (64, 64, 3, 2, True)])
def test_hstu_gluon_qk_fp8_is_the_plain_path_on_quantized_q_and_k(tile: tuple[int | bool, ...]) -> None:
    """``qk_fp8``: the Gluon kernel with q (a scale per token and head) and k (per request and head)
    in e4m3 gives the plain path's attention on the dequantized q and k (bf16 v), every row and the
    candidate rows alone, and stays near bf16's."""
    from suite.backends.kernels import hstu, hstu_wg
    from suite.models import dlrm_v3

    if torch.cuda.get_device_capability()[0] != 9:
        pytest.skip("the Gluon kernel is for sm_90")
    hist, cand, jag, q, k, v = _gluon_requests(5)
    shape = hstu_wg.WgTile(*tile)
    got = hstu_wg.hstu_attention_wg(q, k, v, jag.offsets, jag.history, jag.max_len, 0.3, jag.max_len, tile=shape,
                                    qk_fp8=True)
    bf16 = hstu_wg.hstu_attention_wg(q, k, v, jag.offsets, jag.history, jag.max_len, 0.3, jag.max_len, tile=shape)
    rows = jag.candidate_rows()
    alone = hstu_wg.hstu_attention_wg(q[rows], k, v, jag.offsets, jag.history, jag.max_candidates, 0.3, jag.max_len,
                                      q_offsets=jag.candidate_offsets, tile=shape, qk_fp8=True)
    (q8, sq), (k8, sk) = hstu.quantize_heads(q), hstu.quantize_spans(k, jag.offsets, jag.max_len)
    request = torch.repeat_interleave(torch.arange(len(hist), device="cuda"), jag.offsets.diff())
    qd, kd = q8.float() * sq.t()[..., None], k8.float() * sk.t()[request][..., None]
    for part in range(0, len(hist), 4):
        lo, hi = int(jag.offsets[part]), int(jag.offsets[part + 4]) if part + 4 < len(hist) else int(jag.offsets[-1])
        sub = dlrm_v3.Jagged.of(hist[part:part + 4].cuda(), cand[part:part + 4].cuda(), jag.max_len)
        want = dlrm_v3.jagged_attention(qd[lo:hi], kd[lo:hi], v[lo:hi].float(), sub, 0.3)
        assert (got[lo:hi] - want).abs().max().item() <= 2e-2 * want.abs().max().item(), (part, tile)
    assert (got - bf16).abs().max().item() <= 0.1 * bf16.abs().max().item()
    assert not torch.equal(got, bf16)
    assert torch.allclose(alone, got[rows], atol=1e-5, rtol=1e-4)
    got16 = hstu_wg.hstu_attention_wg(q, k, v, jag.offsets, jag.history, jag.max_len, 0.3, jag.max_len, tile=shape,
                                      qk_fp8=True, out_dtype=torch.bfloat16)
    assert torch.equal(got16, got.to(torch.bfloat16))  # bf16 out: the same sums, rounded once
    # q quantized by its own pass (quantize_heads) instead of in the kernel: the same scales
    q8_pass = hstu_wg.hstu_attention_wg(q, k, v, jag.offsets, jag.history, jag.max_len, 0.3, jag.max_len, tile=shape,
                                        qk_fp8=True, q_in_kernel=False)
    assert (q8_pass - got).abs().max().item() <= 1e-3 * got.abs().max().item()
    # k by given per-head scales (twice each head's largest): the plain path on k so quantized
    ks = 2 * k.float().abs().amax(dim=(0, 2)) / 448
    given = hstu_wg.hstu_attention_wg(q, k, v, jag.offsets, jag.history, jag.max_len, 0.3, jag.max_len, tile=shape,
                                      qk_fp8=True, k_scale=ks)
    kg = (k.float() / ks[None, :, None]).to(torch.float8_e4m3fn).float() * ks[None, :, None]
    for part in range(0, len(hist), 4):
        lo, hi = int(jag.offsets[part]), int(jag.offsets[part + 4]) if part + 4 < len(hist) else int(jag.offsets[-1])
        sub = dlrm_v3.Jagged.of(hist[part:part + 4].cuda(), cand[part:part + 4].cuda(), jag.max_len)
        want = dlrm_v3.jagged_attention(qd[lo:hi], kg[lo:hi], v[lo:hi].float(), sub, 0.3)
        assert (given[lo:hi] - want).abs().max().item() <= 2e-2 * want.abs().max().item(), (part, tile)


@pytest.mark.cuda
@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
def test_hstu_gluon_qkv_fp8_is_the_plain_path_on_quantized_q_k_and_v() -> None:
    """``v_scale``: the Gluon kernel with p v in e4m3 too (v^T by quantize_v_columns, p cast in the
    kernel) gives the plain path's attention on the dequantized q, k and v within p's e4m3 rounding,
    every row and the candidate rows alone (whose own keys' blocks start on a chunk of 32 columns),
    and stays near qk_fp8's; two consumers are refused."""
    from suite.backends.kernels import hstu, hstu_wg
    from suite.models import dlrm_v3

    if torch.cuda.get_device_capability()[0] != 9:
        pytest.skip("the Gluon kernel is for sm_90")
    hist, cand, jag, q, k, v = _gluon_requests(6)
    ks = 2 * k.float().abs().amax(dim=(0, 2)) / 448
    vs = 2 * v.float().abs().amax(dim=(0, 2)) / 448
    args = (q, k, v, jag.offsets, jag.history, jag.max_len, 0.3, jag.max_len)
    got = hstu_wg.hstu_attention_wg(*args, qk_fp8=True, k_scale=ks, v_scale=vs)
    qk8 = hstu_wg.hstu_attention_wg(*args, qk_fp8=True, k_scale=ks)
    rows = jag.candidate_rows()
    alone = hstu_wg.hstu_attention_wg(q[rows], k, v, jag.offsets, jag.history, jag.max_candidates, 0.3, jag.max_len,
                                      q_offsets=jag.candidate_offsets, qk_fp8=True, k_scale=ks, v_scale=vs)
    q8, sq = hstu.quantize_heads(q)
    qd = q8.float() * sq.t()[..., None]
    kd = (k.float() / ks[None, :, None]).to(torch.float8_e4m3fn).float() * ks[None, :, None]
    vd = (v.float() / vs[None, :, None]).to(torch.float8_e4m3fn).float() * vs[None, :, None]
    for part in range(0, len(hist), 4):
        lo, hi = int(jag.offsets[part]), int(jag.offsets[part + 4]) if part + 4 < len(hist) else int(jag.offsets[-1])
        sub = dlrm_v3.Jagged.of(hist[part:part + 4].cuda(), cand[part:part + 4].cuda(), jag.max_len)
        want = dlrm_v3.jagged_attention(qd[lo:hi], kd[lo:hi], vd[lo:hi], sub, 0.3)
        err, top = got[lo:hi] - want, want.abs().max().item()  # p's e4m3 rounding: at most 2^-4 of each term
        assert err.abs().max().item() <= 8e-2 * top and err.pow(2).mean().sqrt().item() <= 1e-2 * top, part
    assert (got - qk8).abs().max().item() <= 0.1 * qk8.abs().max().item() and not torch.equal(got, qk8)
    assert (alone - got[rows]).abs().max().item() <= 1e-5 + 1e-4 * got.abs().max().item()
    with pytest.raises(ValueError, match="one consumer of 64 rows"):
        hstu_wg.hstu_attention_wg(*args, qk_fp8=True, k_scale=ks, v_scale=vs, tile=hstu_wg.WgTile(128, 64, 4, 2, True))


def test_hstu_fp8_quantizing_kernel_gives_torchs_numbers() -> None:
    """quantize_qkv's one-pass kernel: q and k (strided views, as the projection's split gives
    them) scaled per token and head, v per head and channel, to the bit what torch's elementwise
    ops give; every value within fp8's range and every scale positive, a row of zeros included.
    v's requests start at aligned columns, with zeros between them."""
    from suite.backends.kernels.hstu import V_ALIGN, quantize_qkv

    g = torch.Generator().manual_seed(4)
    uvqk = (torch.randn(37, 3, 2, 32, generator=g) * torch.logspace(-3, 2, 37).view(-1, 1, 1, 1)).to(DEVICE)
    uvqk[5] = 0.0
    q, k, v = uvqk[:, 0], uvqk[:, 1], uvqk[:, 2]
    assert not q.is_contiguous()
    offsets = torch.tensor([0, 20, 20, 37], device=DEVICE)  # a request with no tokens between two
    quantized = quantize_qkv(q, k, v, offsets)
    q8, k8, v8 = quantized.q, quantized.k, quantized.v_tokens()
    sq, sk, sv = quantized.q_scales, quantized.k_scales, quantized.v_scales
    assert quantized.v_offsets.tolist() == [0, 32, 32, 64] and V_ALIGN == 16
    assert quantized.v.stride(0) == 1 and quantized.v.data_ptr() % 16 == 0
    padding = torch.ones(quantized.v.shape[0], dtype=torch.bool, device=DEVICE)
    padding[quantized.v_index] = False
    assert int(padding.sum()) == quantized.v.shape[0] - 37 and bool((quantized.v[padding].float() == 0).all())
    want_sq = (q.abs().amax(dim=-1).float() / 448).clamp_min(1e-30)
    want_sk = (k.abs().amax(dim=-1).float() / 448).clamp_min(1e-30)
    want_sv = (v.abs().amax(dim=0).float() / 448).clamp_min(1e-30)
    assert torch.equal(sq, want_sq) and torch.equal(sk, want_sk) and torch.equal(sv, want_sv)
    for got, x, want in ((q8, q, (q.float() / want_sq[..., None])), (k8, k, (k.float() / want_sk[..., None])),
                         (v8, v, (v.float() / want_sv[None]))):
        assert got.dtype == torch.float8_e4m3fn and got.shape == x.shape
        assert torch.equal(got.float(), want.clamp(-448, 448).to(torch.float8_e4m3fn).float())
    assert bool((q8[5].float() == 0).all()) and bool((sq > 0).all())


def _with_fp8_weights(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, jag: object, alpha: float) -> torch.Tensor:
    """The plain attention request by request, each SiLU weight rounded to fp8 e4m3 before its
    product with v: what the fp8 kernel computes, in fp32 on the dequantized q, k and v."""
    from suite.models import dlrm_v3

    mask = dlrm_v3.jagged_mask(jag).float()
    out = torch.zeros_like(v)
    for b in range(len(jag.history)):
        lo, hi = int(jag.offsets[b]), int(jag.offsets[b + 1])
        s = torch.einsum("qhd,khd->hqk", q[lo:hi], k[lo:hi]) * alpha
        w = torch.nn.functional.silu(s).clamp(-448, 448).to(torch.float8_e4m3fn).float() * mask[b, : hi - lo, : hi - lo]
        out[lo:hi] = torch.einsum("hqk,khd->qhd", w, v[lo:hi]) / jag.scale
    return out


@pytest.mark.parametrize("tile", [(32, 32, 4, 2), (32, 32, 4, 2, True, True, True), None])
def test_hstu_fp8_attention_is_the_plain_path_on_quantized_inputs_with_fp8_weights(tile: tuple[int, ...] | None) -> None:
    """fp8=True: q and k quantized with a scale per token and head, v per head and channel (the
    scales made on the device), each tile's SiLU output rounded to fp8 before its product with v,
    sums in fp32: the kernel equals the
    plain path run that way (requests that reach the unmasked bulk, the masked tail and each
    candidate's own key), for every row and for the candidate rows alone; and it stays within a
    tenth of the largest output of the attention on the unquantized inputs."""
    from suite.backends.kernels.hstu import Tile, hstu_attention, quantize_qkv
    from suite.models import dlrm_v3

    g = torch.Generator().manual_seed(2)
    hist, cand = torch.tensor([70, 0, 33, 95]), torch.tensor([20, 3, 40, 1])
    scale = int((1 + hist + cand).max()) + 5
    jag = dlrm_v3.Jagged.of(hist.to(DEVICE), cand.to(DEVICE), scale)
    q, k, v = (torch.randn(int(jag.offsets[-1]), 2, 32, generator=g).to(DEVICE) for _ in range(3))
    quantized = quantize_qkv(q, k, v, jag.offsets)
    q8, k8, v8 = quantized.q, quantized.k, quantized.v_tokens()
    sq, sk, sv = quantized.q_scales, quantized.k_scales, quantized.v_scales
    assert q8.dtype == torch.float8_e4m3fn and (sq.shape, sk.shape, sv.shape) == (q.shape[:2], k.shape[:2], v.shape[1:])
    want = _with_fp8_weights(q8.float() * sq[..., None], k8.float() * sk[..., None], v8.float() * sv[None], jag, 0.25)
    shape = None if tile is None else Tile(*tile)
    got = hstu_attention(q, k, v, jag.offsets, jag.history, jag.max_len, 0.25, scale, tile=shape, fp8=True)
    top = want.abs().max().item()
    # On a GPU the SiLU goes through the hardware tanh (2^-11 from torch's): a weight near an fp8
    # rounding boundary may round the other way, one step of 1/16.
    tol = 2e-3 if DEVICE == "cpu" else 1e-2
    assert got.dtype == torch.float32
    assert (got - want).abs().max().item() <= tol * top
    rows = jag.candidate_rows()
    alone = hstu_attention(q[rows], k, v, jag.offsets, jag.history, jag.max_len, 0.25, scale,
                           q_offsets=jag.candidate_offsets, max_queries=jag.max_candidates, tile=shape, fp8=True)
    q_full = torch.zeros_like(q)
    q_full[rows] = q8[rows].float() * sq[rows][..., None]  # per-row scales: the same rows quantize the same
    want_alone = _with_fp8_weights(q_full, k8.float() * sk[..., None], v8.float() * sv[None], jag, 0.25)[rows]
    assert (alone - want_alone).abs().max().item() <= tol * top
    exact = dlrm_v3.jagged_attention(q, k, v, jag, 0.25)
    # fp8's three mantissa bits on random inputs: 5.5% of the largest output at most here; a lost
    # scale or a garbled block is off by far more. The model's accuracy gate is the real judge.
    assert (got - exact).abs().max().item() <= 0.1 * exact.abs().max().item()


def _in_threads(count: int, work: Callable[[], object]) -> list[object]:
    """``work``'s result in each of ``count`` new threads, one after another (an exception re-raised)."""
    out: list[object] = []

    def run() -> None:
        try:
            out.append(work())
        except Exception as exc:  # handed to the test's thread, which re-raises it
            out.append(exc)

    for _ in range(count):
        thread = threading.Thread(target=run)
        thread.start()
        thread.join()
    for result in out:
        if isinstance(result, Exception):
            raise result
    return out


def test_hstu_gives_triton_its_allocator_in_every_thread() -> None:
    """Triton keeps its allocator per thread: each thread that launches the descriptor kernel
    (a lane, a harness worker) gets one, not only the first."""
    from triton.runtime import _allocation

    from suite.backends.kernels import hstu

    def given() -> bool:
        return hstu._allocator(torch.device("cuda")) and not isinstance(_allocation._allocator.get(), _allocation.NullAllocator)

    assert _in_threads(2, given) == [True, True]


@pytest.mark.cuda
def test_hstu_descriptor_kernel_launches_from_any_thread() -> None:
    """The tensor-descriptor shape, launched eagerly from one new thread after another (as a Server
    batch without a graph runs in a worker), equals the plain path each time."""
    from suite.backends.kernels.hstu import Tile, hstu_attention
    from suite.models import dlrm_v3

    g = torch.Generator().manual_seed(2)
    hist, cand = torch.tensor([300, 40, 900]), torch.tensor([64, 7, 200])
    scale = int((1 + hist + cand).max()) + 5
    jag = dlrm_v3.Jagged.of(hist.cuda(), cand.cuda(), scale)
    q, k, v = (torch.randn(int(jag.offsets[-1]), 4, 16, generator=g).cuda().to(torch.bfloat16) for _ in range(3))
    want = dlrm_v3.jagged_attention(q.float(), k.float(), v.float(), jag, 0.25)
    tile = Tile(64, 64, 4, 3, rows_first=True, tma=True)

    def launch() -> float:
        got = hstu_attention(q, k, v, jag.offsets, jag.history, jag.max_len, 0.25, scale, tile=tile)
        torch.cuda.synchronize()
        return (got - want).abs().max().item()

    assert all(err <= 2e-2 * want.abs().max().item() for err in _in_threads(2, launch))


@pytest.mark.cuda
def test_hstu_tune_times_only_shapes_that_compute_the_attention(monkeypatch: pytest.MonkeyPatch) -> None:
    """``tune`` counts a shape only if its output is the plain-load launch's: the tensor-descriptor
    shapes pass on bf16 MLPerf-like requests, and a launch made to compute something else (every
    value doubled) is rejected and said why, never made :data:`TILE`."""
    from suite.backends.kernels import hstu

    good = (hstu.Tile(64, 64, 4, 3, rows_first=True), hstu.Tile(64, 64, 4, 3, rows_first=True, tma=True))
    wrong = hstu.Tile(64, 32, 4, 4, rows_first=True)
    launch = hstu.hstu_attention

    def doubled_for_wrong(*args: object, tile: hstu.Tile | None = None, **kwargs: object) -> torch.Tensor:
        out = launch(*args, tile=tile, **kwargs)
        return 2 * out if tile == wrong else out

    monkeypatch.setattr(hstu, "hstu_attention", doubled_for_wrong)
    rejected: list[str] = []
    before = hstu.TILE
    try:
        timed = hstu.tune(torch.tensor([900, 40, 3000]), torch.tensor([64, 2048, 7]), tiles=(*good, wrong), rejected=rejected)
    finally:
        hstu.TILE = before
    assert [tile for tile, _ in timed] == list(good)
    assert len(rejected) == 1 and rejected[0].startswith("64x32 w4 s4 rows: output off by")


@pytest.mark.parametrize("low", [torch.float32, torch.bfloat16])
def test_hstu_row_kernels_match_the_plain_path(low: torch.dtype) -> None:
    """The input layer norm rounded to the matmuls' dtype, and the output gate [silu(u), a,
    silu(u) * LN(a)] read from a strided slice of the projection, as the plain functions."""
    from suite.backends.kernels.hstu import fused_gate, fused_norm_to
    from suite.models import dlrm_v3

    g = torch.Generator().manual_seed(2)
    x = (3 * torch.randn(37, 64, generator=g) + 1).to(DEVICE)
    uvqk = torch.randn(37, 256, generator=g).to(DEVICE, low)
    u, a = uvqk[:, 64:128], (2 * torch.randn(37, 64, generator=g) - 0.5).to(DEVICE)
    # bf16: two roundings (silu(u), then the product) of one ulp each; Triton's interpreter rounds
    # toward zero where the GPU rounds to nearest.
    tol = 1e-5 if low == torch.float32 else 2e-2
    got, want = fused_norm_to(x, low), dlrm_v3.norm_to(x, low)
    assert got.dtype == low and torch.allclose(got.float(), want.float(), atol=tol, rtol=tol)
    got, want = fused_gate(u, a), dlrm_v3.gate(u, a)
    assert got.shape == (37, 192) and got.dtype == low
    assert torch.allclose(got.float(), want.float(), atol=tol, rtol=tol)
    assert torch.allclose(got[:, 64:128].float(), a, rtol=2 ** -7, atol=0)  # a passes through, rounded once


def test_hstu_fp8_row_kernels_quantize_as_the_plain_path() -> None:
    """The layer norm and the output gate quantized per row to e4m3 (suite.models.dlrm_v3_fp8):
    the same scales, and every value on the plain path's e4m3 code or its neighbour (the fp32
    math before the rounding may differ in its last bit)."""
    from suite.backends.kernels.hstu import fused_gate_fp8, fused_norm_fp8
    from suite.models import dlrm_v3_fp8 as f8

    g = torch.Generator().manual_seed(4)
    x = (3 * torch.randn(37, 64, generator=g) + 1).to(DEVICE)
    x[5] = 0  # a zero row: zeros, not NaNs
    uvqk = torch.randn(37, 256, generator=g).to(DEVICE, torch.bfloat16)
    u, a = uvqk[:, 64:128], (2 * torch.randn(37, 64, generator=g) - 0.5).to(DEVICE)
    for (got8, got_s), (want8, want_s), width in ((fused_norm_fp8(x), f8.norm_fp8(x), 64),
                                                  (fused_gate_fp8(u, a), f8.gate_fp8(u, a), 192)):
        assert got8.shape == (37, width) and got8.dtype == torch.float8_e4m3fn and got_s.shape == (37, 1)
        assert torch.allclose(got_s, want_s, rtol=1e-5, atol=0)
        got, want = got8.float(), want8.float()
        assert torch.isfinite(got).all() and got.abs().max() == 448
        assert torch.all((got - want).abs() <= 2.0 ** -3 * want.abs() + 2.0 ** -9)  # one e4m3 step at most
        assert (got != want).float().mean() < 0.01


def test_fused_dlrm_v3_forward_with_fp8_products_matches_the_plain_fp8_path() -> None:
    """``projections=fp8`` through the fused attention and row kernels gives the plain fp8 path's
    logits (suite.models.dlrm_v3_fp8 on the plain attention), and says so in what it records."""
    from suite.backends.kernels.hstu import use_fused_attention
    from suite.datasets import streaming
    from suite.models.dlrm_v3_fp8 import use_fp8_projections

    spec = ModelSpec(name="dlrm-v3", scale="tiny")
    batch = streaming.features(spec.config, spec, 9, np.random.default_rng(0))  # type: ignore[arg-type]  # jagged requests
    dense = torch.from_numpy(batch.dense).to(DEVICE)
    sparse = [torch.from_numpy(s).to(DEVICE) for s in batch.sparse]
    low = torch.bfloat16 if CUDA else torch.float32  # the interpreter runs the attention kernel in fp32 only
    with torch.inference_mode():
        want = use_fp8_projections(build(spec, device=DEVICE, dtype=low))(dense, sparse)
        model = use_fused_attention(build(spec, device=DEVICE, dtype=low), projections="fp8")
        got = model(dense, sparse)
    assert model.describe()["projections"] == "fp8 e4m3, row-wise scales: uvqk and the output projection"
    assert got.shape == want.shape
    # Under the interpreter (fp32) most logits agree to float rounding; a few requests differ where a
    # row kernel's value landed on the neighbouring e4m3 code (the fp32 math before the rounding
    # differs in its last bit) and the layers after carried it (6.6% of the largest logit at most).
    # On the GPU the attention kernel's bf16 rounding differs from the plain path's too (median 0.2%).
    off = (got - want).abs()
    assert off.median() <= (1e-2 if CUDA else 1e-4) * want.abs().max() and off.max() <= 0.1 * want.abs().max()


@pytest.mark.parametrize(("parts", "scatter", "source"), [(1, False, False), (2, True, True), (4, True, True), (3, False, True)])
def test_hstu_rows_sum_kernel_adds_rows_as_the_plain_path(parts: int, scatter: bool, source: bool) -> None:
    """dlrm-v3's token sums (:func:`suite.models.dlrm_v3.rows_sum`): each output row its source
    row plus table rows, bf16 and fp32 tables, ids of any int type and an expanded (stride-0) one,
    added in the same order as the plain path (equal to the bit), into a column slice or scattered."""
    from suite.backends.kernels.hstu import fused_rows_sum
    from suite.models import dlrm_v3

    g = torch.Generator().manual_seed(5)
    n, d = 23, 32
    tables = [torch.randn(40, d, generator=g).to(DEVICE, dtype) for dtype in (torch.bfloat16, torch.float32) * 2][:parts]
    ids = [torch.randint(0, 40, (n,), generator=g).to(DEVICE, dtype) for dtype in (torch.int32, torch.int64) * 2][:parts]
    if parts > 2:
        ids[2] = torch.tensor([7], device=DEVICE).expand(n)
    src = torch.randn(n, d, generator=g).to(DEVICE) if source else None
    at = torch.randperm(n + 5, generator=g)[:n].to(DEVICE) if scatter else None
    got, want = (torch.full((n + 5 if scatter else n, 2 * d), -1.0, device=DEVICE) for _ in range(2))
    fused_rows_sum(got[:, d:], at, src, list(zip(tables, ids, strict=True)))
    dlrm_v3.rows_sum(want[:, d:], at, src, list(zip(tables, ids, strict=True)))
    assert torch.equal(got, want)
    assert (got[:, :d] == -1).all()  # the other columns untouched
    if scatter:  # rows not scattered to untouched, those scattered to written
        written = torch.zeros(n + 5, dtype=torch.bool, device=DEVICE)
        written[at] = True
        assert (got[~written] == -1).all() and not (got[written][:, d:] == -1).any()


def test_fused_dlrm_v3_forward_matches_the_plain_path() -> None:
    from suite.backends.kernels.hstu import use_fused_attention
    from suite.datasets import streaming

    spec = ModelSpec(name="dlrm-v3", scale="tiny")
    rng = np.random.default_rng(0)
    batch = streaming.features(spec.config, spec, 9, rng)  # type: ignore[arg-type]  # jagged requests
    dense = torch.from_numpy(batch.dense).to(DEVICE)
    sparse = [torch.from_numpy(s).to(DEVICE) for s in batch.sparse]
    with torch.inference_mode():
        want = build(spec, device=DEVICE)(dense, sparse)
        got = use_fused_attention(build(spec, device=DEVICE))(dense, sparse)
    assert got.shape == want.shape == (9, spec.schema.tasks)
    assert torch.allclose(got, want, atol=1e-4, rtol=1e-4)


@pytest.mark.cuda
@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
def test_hstu_gluon_tune_with_qk_fp8_picks_the_fastest_fp8_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    """``tune(qk_fp8=True)`` (``attention=qk-fp8 tune=1``) times the fp8 shapes against the default
    fp8 shape's output and makes the fastest :data:`hstu_wg.FP8_WG_TILE`; the bf16 shape stays."""
    from suite.backends.kernels import hstu_wg

    if torch.cuda.get_device_capability()[0] != 9:
        pytest.skip("the Gluon kernel is for sm_90")
    monkeypatch.setattr(hstu_wg, "FP8_WG_TILE", hstu_wg.FP8_WG_TILE)
    monkeypatch.setattr(hstu_wg, "WG_TILE", hstu_wg.WG_TILE)
    bf16 = hstu_wg.WG_TILE
    shapes = (hstu_wg.WgTile(64, 64, 3, 2, True), hstu_wg.WgTile(64, 64, 4, 2, True), hstu_wg.WgTile(128, 64, 4, 2, True))
    rejected: list[str] = []
    timed = hstu_wg.tune(torch.tensor([700, 1300]), torch.tensor([200, 64]), calls=2, tiles=shapes, rejected=rejected,
                         qk_fp8=True)
    assert not rejected and [tile for tile, _ in timed] == list(shapes)
    assert hstu_wg.FP8_WG_TILE == min(timed, key=lambda t: t[1])[0] and hstu_wg.WG_TILE == bf16


def test_qkv_fp8_gives_every_layer_its_key_and_value_bounds() -> None:
    """use_fused_attention with v in fp8 (what ``attention=qkv-fp8`` asks for where the Gluon kernel
    runs): every STU layer's attention takes k's and v's per-head scales from that layer's own
    weight bounds over 448, and the run records the kernel and its one launch shape; with q and k
    alone, no v scale."""
    from suite.backends.kernels import hstu, hstu_wg

    spec = ModelSpec(name="dlrm-v3", scale="tiny")
    model = hstu.use_fused_attention(build(spec), gluon=True, qk_fp8=True, v_fp8=True)
    for layer in model.layers:  # type: ignore[union-attr]  # the dlrm-v3 model's ModuleList
        kw = layer.attend.keywords
        assert torch.equal(kw["k_scale"], layer.key_bounds() / 448) and torch.equal(kw["v_scale"], layer.value_bounds() / 448)
    described = model.describe()  # type: ignore[operator]  # describe is patched in
    assert described["attention"].endswith("q, k and v in fp8 e4m3)") and described["tile"] == hstu_wg.FP8V_WG_TILE.text()
    qk = hstu.use_fused_attention(build(spec), gluon=True, qk_fp8=True)
    assert all(layer.attend.keywords["v_scale"] is None for layer in qk.layers)  # type: ignore[union-attr]  # the dlrm-v3 model's ModuleList
    assert qk.describe()["attention"].endswith("q and k in fp8 e4m3)")  # type: ignore[operator]  # describe is patched in


@pytest.mark.skipif(CUDA, reason="on a GPU the sm_90 check may pass")
def test_dlrm_v3_attention_option_takes_gluon_only_where_it_runs() -> None:
    """``attention=auto`` (the default) launches the Gluon kernel only where it runs and the Triton
    kernel elsewhere; ``attention=gluon``, ``qk-fp8`` or ``qkv-fp8`` asked for where it cannot run, fp8
    ``projections`` outside bf16 and ``attention_out`` without the Gluon kernel are refused at
    load, saying why."""
    from suite.errors import BackendUnavailableError, ConfigError

    spec = ModelSpec(name="dlrm-v3", scale="tiny")
    model = fused.for_backend(build(spec), spec, "bf16", {})
    assert model.describe()["attention"].startswith("triton hstu_attention")  # type: ignore[operator]  # describe is patched in
    for precision, options, error, message in (
            ("bf16", {"attention": "gluon"}, BackendUnavailableError, "'attention' gluon needs an sm_90 GPU (Hopper: H100, H200; got cpu)"),
            ("fp16", {"attention": "gluon"}, BackendUnavailableError, "'attention' gluon runs bf16 only (got 'fp16')"),
            ("bf16", {"attention": "qk-fp8"}, BackendUnavailableError, "'attention' qk-fp8 needs an sm_90 GPU (Hopper: H100, H200; got cpu)"),
            ("fp16", {"projections": "fp8"}, ConfigError, "'projections' fp8 needs 'precision' bf16 (got 'fp16')"),
            ("bf16", {"projections": "int8"}, ConfigError, "'projections' must be one of ['bf16', 'fp8', 'fp8-out'] (got 'int8')"),
            ("bf16", {"attention_out": "fp16"}, ConfigError, "'attention_out' must be one of ['bf16', 'fp32'] (got 'fp16')"),
            ("bf16", {"attention_out": "fp32"}, ConfigError, "'attention_out' applies to the Gluon attention (attention=auto "
             "on sm_90, gluon, qk-fp8 or qkv-fp8), not to attention=auto (the Gluon kernel needs an sm_90 GPU (Hopper: H100, H200; got cpu))"),
            ("bf16", {"attention": "model", "attention_out": "bf16"}, ConfigError, "'attention_out' applies to the Gluon "
             "attention (attention=auto on sm_90, gluon, qk-fp8 or qkv-fp8), not to attention=model"),
            ("bf16", {"attention": "qkv-fp8"}, BackendUnavailableError, "'attention' qkv-fp8 needs an sm_90 GPU (Hopper: H100, H200; got cpu)"),
            ("bf16", {"attention": "qkv-fp8", "tune": "1"}, BackendUnavailableError,
             "'attention' qkv-fp8 needs an sm_90 GPU (Hopper: H100, H200; got cpu)")):
        with pytest.raises(error) as caught:
            fused.for_backend(build(spec), spec, precision, options)
        assert str(caught.value) == message


def test_attention_auto_is_qkv_fp8_where_the_gluon_kernel_runs() -> None:
    """What ``--option attention`` runs, given whether the Gluon kernel runs here (True, or why
    not): ``auto`` is qkv-fp8 on sm_90 in bf16 and the Triton kernel elsewhere; qkv-fp8, asked for
    or picked by ``auto``, is refused with ``tune=1`` (one launch shape), which the other modes take."""
    from suite.errors import ConfigError

    why = "needs an sm_90 GPU (Hopper: H100, H200; got cpu)"
    assert fused.attention_mode("auto", True, "0") == "qkv-fp8"
    assert fused.attention_mode("auto", why, "0") == fused.attention_mode("auto", why, "1") == "model"
    assert [fused.attention_mode(m, True, "1") for m in ("gluon", "qk-fp8", "model", "fp8")] == ["gluon", "qk-fp8", "model", "fp8"]
    for attention, got in (("qkv-fp8", "attention=qkv-fp8"), ("auto", "attention=auto, which is qkv-fp8 on this GPU")):
        with pytest.raises(ConfigError) as caught:
            fused.attention_mode(attention, True, "1")
        assert str(caught.value) == f"'tune' 1 times the shapes of attention=qk-fp8 and gluon; qkv-fp8 has one (got {got})"


@pytest.mark.cuda
@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
def test_hstu_residual_out_adds_inside_the_product_in_place() -> None:
    """The output projection with the residual add in cuBLAS's accumulator: x + g W^T written into
    x, the product kept in fp32 (closer to the exact sum than the plain path's bf16-rounded one)."""
    from suite.backends.kernels.hstu import fused_residual_out
    from suite.models import dlrm_v3

    g = torch.Generator(device="cuda").manual_seed(3)
    x = torch.randn(1000, 512, device="cuda", generator=g)
    gate = torch.randn(1000, 1536, device="cuda", generator=g).bfloat16()
    w = (torch.randn(512, 1536, device="cuda", generator=g) / 40).bfloat16()
    exact = x.double() + gate.double() @ w.double().t()
    plain = dlrm_v3.residual_out(x, gate, w)
    got = fused_residual_out(x, gate, w)
    assert got.data_ptr() == x.data_ptr() and got.dtype == torch.float32
    assert (got.double() - exact).abs().max() <= (plain.double() - exact).abs().max()
    assert torch.allclose(got, plain, atol=2e-2, rtol=1e-2)


def test_fused_dlrm_v3_forward_with_fp8_attention_stays_near_the_plain_path() -> None:
    """``attention=fp8`` (use_fused_attention(fp8=True)): every STU layer's attention in fp8 e4m3,
    recorded as such; the model's logits stay within a tenth of the largest of the plain path's (the
    accuracy gate on the GPU decides whether fp8 may be used)."""
    from suite.backends.kernels.hstu import use_fused_attention
    from suite.datasets import streaming

    spec = ModelSpec(name="dlrm-v3", scale="tiny")
    batch = streaming.features(spec.config, spec, 9, np.random.default_rng(0))  # type: ignore[arg-type]  # jagged requests
    dense = torch.from_numpy(batch.dense).to(DEVICE)
    sparse = [torch.from_numpy(s).to(DEVICE) for s in batch.sparse]
    with torch.inference_mode():
        want = build(spec, device=DEVICE)(dense, sparse)
        model = use_fused_attention(build(spec, device=DEVICE), fp8=True)
        got = model(dense, sparse)
    assert "fp8" in model.describe()["attention"]
    assert got.shape == want.shape and not torch.equal(got, want)
    # 6.3% of the largest logit here (the tiny model's requests are short: few keys to average the
    # weights' rounding over); a lost scale or a garbled block is off by far more.
    assert (got - want).abs().max().item() <= 0.1 * want.abs().max().item()
