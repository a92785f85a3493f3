"""dlrm-v3's STU products in fp8 e4m3 (suite.models.dlrm_v3_fp8), in plain PyTorch on the CPU.

On a CPU the products run as the fp32 product of the dequantized operands (e4m3 values are exact
in fp32), so these hold without a GPU or Triton; on a GPU (marked ``cuda``) ``torch._scaled_mm``
is checked against that. The fused row kernels are checked against these functions in
test_kernels.py, and the accuracy gate on the GPU decides whether the option may be used.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from suite.datasets import streaming  # noqa: E402
from suite.models import ModelSpec, build  # noqa: E402
from suite.models import dlrm_v3_fp8 as f8  # noqa: E402

#: e4m3 keeps 3 mantissa bits: a value is within half a step, 2^-4 of itself, of its rounding (and
#: within half the smallest subnormal step of a row's scale times 2^-9 near zero).
E4M3_REL = 2.0 ** -4


def test_quantize_rows_puts_each_rows_largest_on_448_and_rounds_within_half_a_step() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(9, 64, generator=g) * torch.logspace(-3, 3, 9)[:, None]
    x[4] = 0  # an all-zero row: zeros, not NaNs
    x8, scale = f8.quantize_rows(x)
    assert x8.dtype == torch.float8_e4m3fn and scale.shape == (9, 1) and scale.dtype == torch.float32
    top = x8.float().abs().amax(dim=1)
    assert torch.equal(top[torch.arange(9) != 4], torch.full((8,), 448.0)) and top[4] == 0
    back = f8.dequantize_rows(x8, scale)
    assert torch.all((back - x).abs() <= E4M3_REL * x.abs() + scale * 2.0 ** -9)
    assert torch.isfinite(back).all()


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=[
    pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")])])
def test_fp8_linear_is_the_product_of_the_dequantized_operands_with_its_bias(device: str) -> None:
    g = torch.Generator().manual_seed(1)
    w, b = torch.randn(48, 32, generator=g).to(device) / 6, torch.randn(48, generator=g).to(device)
    x = torch.randn(20, 32, generator=g).to(device) * 3
    lin = f8.Fp8Linear.of(w, b)
    x8, sx = f8.quantize_rows(x)
    want = f8.dequantize_rows(x8, sx) @ f8.dequantize_rows(lin.weight, lin.scale.t()).t() + b
    got = lin(x8, sx, torch.float32)
    assert got.shape == (20, 48) and torch.allclose(got, want, atol=1e-3, rtol=1e-3)  # the GPU sums in its own order
    part = lin.rows(16, 48)(x8, sx, torch.float32)  # a block of output channels, as the last layer asks
    assert torch.allclose(part, got[:, 16:48], atol=1e-5, rtol=1e-5)
    assert lin(x8, sx, torch.bfloat16).dtype == torch.bfloat16
    exact = x @ w.t() + b  # and near the unquantized product: a few e4m3 steps of its rows
    assert (got - exact).abs().max() <= 0.1 * exact.abs().max()


def test_gate_shares_one_scale_a_row_over_its_three_parts() -> None:
    g = torch.Generator().manual_seed(2)
    u, a = torch.randn(7, 16, generator=g).bfloat16(), torch.randn(7, 16, generator=g) * 0.1
    g8, scale = f8.gate_fp8(u, a)
    assert g8.shape == (7, 48) and scale.shape == (7, 1)
    su = torch.nn.functional.silu(u.float())
    want = torch.cat([su, a, su * torch.nn.functional.layer_norm(a, (16,))], dim=1)
    back = f8.dequantize_rows(g8, scale)
    assert torch.all((back - want).abs() <= E4M3_REL * want.abs() + scale * 2.0 ** -9)
    with pytest.raises(ValueError) as caught:
        f8.Fp8Layer.of(build(ModelSpec(name="dlrm-v3", scale="tiny")).layers[0], "int8")
    assert str(caught.value) == "'products' must be one of ['fp8', 'fp8-out'] (got 'int8')"


@pytest.mark.parametrize(("products", "bound"), [("fp8", 0.25), ("fp8-out", 0.12)])
def test_dlrm_v3_with_fp8_products_stays_near_fp32(products: str, bound: float) -> None:
    """The tiny model's logits with the STU products in fp8 (plain attention, the last layer's
    candidate rows alone included) against fp32's: nearer than ``bound`` of the largest logit
    (measured 0.14 with both products, 0.063 with the output projection alone; bf16 0.015: e4m3's
    3 mantissa bits on the layer norm's output are most of it), and not bf16's numbers."""
    spec = ModelSpec(name="dlrm-v3", scale="tiny")
    batch = streaming.features(spec.config, spec, 9, np.random.default_rng(0))  # type: ignore[arg-type]  # jagged requests
    dense, sparse = torch.from_numpy(batch.dense), [torch.from_numpy(s) for s in batch.sparse]
    with torch.inference_mode():
        fp32 = build(spec)(dense, sparse)
        bf16 = build(spec, dtype=torch.bfloat16)(dense, sparse)
        model = f8.use_fp8_projections(build(spec, dtype=torch.bfloat16), products)
        got = model(dense, sparse)
    assert got.shape == fp32.shape and got.dtype == torch.float32
    assert (got - fp32).abs().max() <= bound * fp32.abs().max()
    assert not torch.allclose(got, bf16, atol=1e-3)
    assert torch.equal(got[fp32 == 0], fp32[fp32 == 0])  # padding slots stay 0
