"""dlrm-v3's STU projections in fp8 e4m3: what the numbers are, in plain PyTorch.

Each STU layer has two products, nearly half of a batch's GPU time once the attention is fused:
``uvqk`` (the layer norm of the stream, 512 -> 2,048 with a bias) and the output projection (the
gate, 1,536 -> 512, added to the fp32 stream). Hopper's fp8 tensor cores run twice the bf16 rate.
Here both products take e4m3 operands with *row-wise* scales, as cuBLAS and CUTLASS name them:

* weights: one fp32 scale per output channel, its row's largest magnitude over 448, made once
  from the build's weights (:class:`Fp8Linear`);
* activations: one scale per token, from that token's own row (:func:`norm_fp8`, :func:`gate_fp8`),
  so no calibration pass is needed and one outlier token costs no other token its precision;
* products accumulate in fp32 and come out in bf16 (``uvqk``: what the attention reads) or fp32
  (the output projection, added to the stream), through ``torch._scaled_mm`` on a GPU (on a CPU,
  as a reference, the fp32 product of the dequantized operands).

The layer norm and the gate are computed in fp32 from their inputs and quantized from fp32, not
first rounded to bf16 as the bf16 path does. Everything else is the bf16 layer's
(:class:`suite.models.dlrm_v3.STULayer`): the attention (fused or plain) still reads bf16 q, k, v.
:func:`use_fp8_projections` makes every STU layer of a built model run this way; torch-cuda's
``--option projections=fp8`` calls it, with fused kernels for the two row functions.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from suite.models.dlrm_v3 import STULayer

#: e4m3's largest finite magnitude.
E4M3_MAX = 448.0
#: The smallest scale kept (an all-zero row quantizes to zeros, not NaNs).
MIN_SCALE = 1e-30


def quantize_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x (M, K) as e4m3 with one fp32 dequantizing scale a row (M, 1): the row's largest magnitude
    over 448, so the largest lands on e4m3's largest value."""
    xf = x.float()
    scale = (xf.abs().amax(dim=1, keepdim=True) / E4M3_MAX).clamp_min(MIN_SCALE)
    return (xf / scale).clamp(-E4M3_MAX, E4M3_MAX).to(torch.float8_e4m3fn), scale


def dequantize_rows(x8: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """What :func:`quantize_rows` stands for, in fp32."""
    return x8.float() * scale


@dataclass(frozen=True)
class Fp8Linear:
    """A linear layer's weight (N, K) as e4m3 with one fp32 scale per output channel (1, N), its
    bias (N,) kept in fp32 (or None); called on row-quantized activations (M, K) with their scales
    (M, 1), it returns ``x W^T + b`` in ``out_dtype``, accumulated in fp32. The bias stays in
    the build's dtype."""

    weight: torch.Tensor
    scale: torch.Tensor
    bias: torch.Tensor | None

    @classmethod
    def of(cls, weight: torch.Tensor, bias: torch.Tensor | None = None) -> Fp8Linear:
        w8, scale = quantize_rows(weight)
        return cls(w8, scale.reshape(1, -1).contiguous(), None if bias is None else bias.detach())

    def rows(self, lo: int, hi: int) -> Fp8Linear:
        """Output channels ``lo:hi`` alone (views: a contiguous block of the weight's rows)."""
        return Fp8Linear(self.weight[lo:hi], self.scale[:, lo:hi], None if self.bias is None else self.bias[lo:hi])

    def __call__(self, x8: torch.Tensor, scale: torch.Tensor, out_dtype: torch.dtype) -> torch.Tensor:
        if not x8.is_cuda:  # e4m3 values are exact in fp32: the same product, whatever this torch's CPU _scaled_mm takes
            y = dequantize_rows(x8, scale) @ dequantize_rows(self.weight, self.scale.t()).t()
            return (y if self.bias is None else y + self.bias.float()).to(out_dtype)
        if self.bias is not None and out_dtype == torch.float32:  # _scaled_mm takes no bias with an fp32 output
            return torch._scaled_mm(x8, self.weight.t(), scale, self.scale, out_dtype=out_dtype) + self.bias.float()
        bias = self.bias if self.bias is None or self.bias.dtype == out_dtype else self.bias.to(out_dtype)
        return torch._scaled_mm(x8, self.weight.t(), scale, self.scale, bias=bias, out_dtype=out_dtype)


def norm_fp8(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The layer's input layer norm (no affine parameters), computed in fp32 and quantized per row."""
    return quantize_rows(F.layer_norm(x.float(), (x.shape[-1],)))


def gate_fp8(u: torch.Tensor, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The output projection's input ``[silu(u), a, silu(u) * LN(a)]``
    (:func:`suite.models.dlrm_v3.gate`) computed in fp32 and quantized per row (all 3 D columns
    share a row's scale, as the product needs)."""
    su, af = F.silu(u.float()), a.float()
    return quantize_rows(torch.cat([su, af, su * F.layer_norm(af, (af.shape[-1],))], dim=-1))


def gather_rows(x8: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """``x8[rows]`` for an fp8 tensor (through its bytes: not every device indexes fp8)."""
    return x8.view(torch.uint8)[rows].view(x8.dtype)


#: Which STU products ``use_fp8_projections`` takes to fp8: both, or the output projection alone
#: (``uvqk`` then stays bf16 on the bf16 layer norm, as the bf16 layer runs it).
PRODUCTS = ("fp8", "fp8-out")


@functools.cache
def wide_output(device: torch.device) -> bool:
    """Whether ``torch._scaled_mm`` with row-wise scales writes fp32 on ``device`` (else bf16: the
    output projection is then rounded to bf16 before it is added to the fp32 stream). It does on
    the H200 with torch 2.11, but not with a bias."""
    if device.type != "cuda":
        return True
    one = torch.ones((16, 16), device=device).to(torch.float8_e4m3fn)
    scale = torch.ones((16, 1), device=device)
    try:
        torch._scaled_mm(one, one.t(), scale, scale.t().contiguous(), out_dtype=torch.float32)
    except RuntimeError:
        return False
    return True


@dataclass(frozen=True)
class Fp8Layer:
    """One STU layer's products in fp8 (``uvqk`` None: that one in bf16, as the bf16 layer runs
    it), the dtype the output projection comes out in, and the row functions that feed the
    products (replaceable by fused kernels with the same numbers). :meth:`install` puts them in
    the layer's place (:class:`suite.models.dlrm_v3.STULayer`'s ``source``, ``product``, ``pick``
    and ``output``): the layer's forward is otherwise its own."""

    uvqk: Fp8Linear | None
    out: Fp8Linear
    out_dtype: torch.dtype = torch.float32
    norm: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]] = norm_fp8
    gate: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]] = gate_fp8

    @classmethod
    def of(cls, layer: STULayer, products: str = "fp8", **rows: Callable) -> Fp8Layer:
        if products not in PRODUCTS:
            raise ValueError(f"'products' must be one of {list(PRODUCTS)} (got {products!r})")
        w = layer.uvqk.weight
        wide = torch.float32 if wide_output(w.device) else torch.bfloat16
        return cls(Fp8Linear.of(w, layer.uvqk.bias) if products == "fp8" else None, Fp8Linear.of(layer.out.weight),
                   wide, **rows)

    def install(self, layer: STULayer) -> None:
        """Shadow the layer's ``output`` (and, with ``uvqk``, its ``source``, ``product`` and
        ``pick``) with the fp8 forms; x, the layer's own input (fp32), takes the output in place."""
        uvqk, low = self.uvqk, layer.uvqk.weight.dtype
        if uvqk is not None:
            layer.source = self.norm  # type: ignore[method-assign, assignment]  # an instance's own form, by design; a pair is a tuple
            layer.product = lambda src, lo, hi: uvqk.rows(lo, hi)(src[0], src[1], low)  # type: ignore[method-assign]  # as above
            layer.pick = lambda src, keep: (gather_rows(src[0], keep), src[1][keep])  # type: ignore[method-assign]  # as above
        layer.output = lambda x, u, a: x.add_(self.out(*self.gate(u, a), self.out_dtype))  # type: ignore[method-assign]  # as above


def use_fp8_projections(model: nn.Module, products: str = "fp8", **rows: Callable) -> nn.Module:
    """Have every STU layer of a built 16-bit dlrm-v3 run ``products`` (:data:`PRODUCTS`) in fp8
    (:meth:`Fp8Layer.install`); ``rows``: fused ``norm`` and ``gate`` in place of the plain ones.
    Returns the model it was given."""
    for layer in model.layers:  # type: ignore[union-attr]  # the dlrm-v3 model's ModuleList
        Fp8Layer.of(layer, products, **rows).install(layer)
    return model
