"""int8 inference of the zoo's models on the CPU, with torch's x86 quantized kernels.

Two conversions of a built fp32 model, each a plain module swap (the model's ``forward`` is
unchanged):

* Embedding rows: every sum-pooled ``nn.EmbeddingBag`` becomes a :class:`ByteRowwiseBag`, its rows
  stored as uint8 with one fp32 scale and bias per row (``embedding_bag_byte_prepack``, dim + 8
  bytes a row instead of 4 x dim) and pooled by ``embedding_bag_byte_rowwise_offsets``, which
  dequantizes while it sums. A lookup reads about a quarter of the bytes of fp32.
* Dense layers: ``nn.Linear`` becomes :class:`Int8Linear` (DIEN's ``nn.GRU`` torch's dynamically
  quantized GRU): int8 weights with one scale per output channel, activations quantized per batch
  from their own range, so no calibration pass is needed (a static activation scale ran a 1024-cube
  int8 GEMM at 407 GOP/s on one core here against dynamic's 388: 5%, not worth calibrating), int32
  accumulation, fp32 out. The last layer of each model (its 1- or 2-wide output) stays fp32: it
  costs nothing and its error would reach the score undamped.

What was converted is returned as an :class:`Int8Plan` and recorded in the backend's info.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch import nn
from torch.ao.quantization import quantize_dynamic
from torch.ao.quantization.qconfig import default_dynamic_qconfig

#: How the dense layers run beside int8 rows: ``int8`` (dynamic quantization; every model passes the
#: 99% gate, and all but dlrm-v2 99.9%: its activation scales follow each batch, so it lands at
#: 99.86-99.91% as batches form) or ``bf16`` (weights and activations; every model passes 99.9%).
#: Measured in benchmarks/cpu.py and LoadGen accuracy runs (docs/cpu-speed.md).
DENSE = ("int8", "bf16")
#: How the embedding rows are stored beside int8 dense layers: ``int8`` (uint8 with a per-row scale and
#: bias: a third of fp32's bytes) or ``fp32`` (the model's own rows). On this CPU a gather is bound by
#: the rows it visits, not their bytes: fbgemm's byte-rowwise pooling ran DLRM-RMC1's 40-byte rows no
#: faster than its 128-byte fp32 rows (docs/cpu-speed.md), so fp32 rows cost memory, not time there.
ROWS = ("int8", "fp32")


def full_range_activations() -> bool:
    """Whether fbgemm's int8 products take activations over all 8 bits on this CPU: with AVX-512
    VNNI they sum uint8 x int8 products straight into int32. Without it (AVX2) they add each pair of
    products into int16 with saturation first (``vpmaddubsw``): 255 x 127 x 2 overflows, so
    activations must keep to 7 bits (torch's ``reduce_range``), where 127 x 127 x 2 fits. On an
    AVX2-only EPYC the full 8 bits put a 64-wide layer's output 19% of its largest value off fp32."""
    probe = getattr(torch.cpu, "_is_vnni_supported", None)  # torch's probe of avx512_vnni
    return bool(probe()) if probe is not None else False


class Int8Linear(nn.Module):
    """``nn.Linear`` with int8 weights (symmetric, one scale per output channel) and activations
    quantized per call to uint8, accumulated in int32 (fbgemm's ``linear_dynamic``). The
    activations use their full 8 bits where the CPU has AVX-512 VNNI and 7 bits elsewhere
    (:func:`full_range_activations`; ``reduce_range`` says which). torch's own dynamic Linear always
    takes 7 bits; the full 8 bits took dlrm-v2 from 99.60% to 99.91% of the reference AUC on a
    VNNI CPU at the same speed.
    """

    def __init__(self, linear: nn.Linear, relu: bool = False) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.relu = relu
        self.reduce_range = not full_range_activations()
        weight = linear.weight.detach().float()
        scale = (weight.abs().amax(dim=1) / 127).clamp_min(1e-12).double()
        zero = torch.zeros(self.out_features, dtype=torch.long)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the quantized-tensor deprecation notice; fbgemm's packing needs one
            qweight = torch.quantize_per_channel(weight, scale, zero, 0, torch.qint8)
        bias = None if linear.bias is None else linear.bias.detach().float()
        self.packed = torch.ops.quantized.linear_prepack(qweight, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        op = torch.ops.quantized.linear_relu_dynamic if self.relu else torch.ops.quantized.linear_dynamic
        out: torch.Tensor = op(x, self.packed, self.reduce_range)
        return out


def fuse_relu(model: nn.Module) -> int:
    """Fold every ``nn.ReLU`` that follows an :class:`Int8Linear` in an ``nn.Sequential`` into it
    (fbgemm's ``linear_relu_dynamic`` clamps while it writes the output: one pass over the
    activations fewer); the ReLU becomes an ``nn.Identity``. Returns how many were folded."""
    folded = 0
    for module in model.modules():
        if isinstance(module, nn.Sequential):
            layers = list(module)
            for i in range(len(layers) - 1):
                if isinstance(layers[i], Int8Linear) and isinstance(layers[i + 1], nn.ReLU):
                    layers[i].relu = True  # type: ignore[assignment]  # nn.Module.__setattr__ is typed for tensors and modules
                    module[i + 1] = nn.Identity()
                    folded += 1
    return folded


class FusedCrossNet(nn.Module):
    """DLRM-v2's low-rank cross network (:class:`suite.models.dlrm_v2.LowRankCrossNet`) with
    ``x0 * up(down(x)) + x`` as one ``addcmul`` (one pass over the 3456-wide activations instead
    of a multiply and an add: the two took a fifth of int8 dlrm-v2's time here)."""

    def __init__(self, down: nn.ModuleList, up: nn.ModuleList) -> None:
        super().__init__()
        self.down, self.up = down, up

    def forward(self, x0: torch.Tensor) -> torch.Tensor:
        x = x0
        for down, up in zip(self.down, self.up, strict=True):
            x = torch.addcmul(x, x0, up(down(x)))
        return x


class ByteRowwiseBag(nn.Module):
    """A sum-pooled table of uint8 rows, each with its own fp32 scale and bias.

    ``forward(ids (N, L))`` returns the (N, E) fp32 sums of each item's L rows, like the
    ``nn.EmbeddingBag`` it replaces on 2-D input (every bag in the suite has a fixed size).
    """

    def __init__(self, bag: nn.EmbeddingBag, out_dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.out_dtype = out_dtype
        if bag.mode != "sum":
            raise ValueError(f"only sum-pooled tables are quantized (got mode {bag.mode!r})")
        self.num_embeddings, self.embedding_dim = bag.weight.shape
        packed = torch.ops.quantized.embedding_bag_byte_prepack(bag.weight.detach().float().contiguous())
        self.register_buffer("packed", packed)
        self._offsets: dict[tuple[int, int, torch.dtype], torch.Tensor] = {}

    def offsets(self, n: int, per_bag: int, dtype: torch.dtype) -> torch.Tensor:
        """The bag starts of ``n`` bags of ``per_bag`` ids, built once per shape (a run sees a few)."""
        key = (n, per_bag, dtype)
        if key not in self._offsets:
            if len(self._offsets) >= 64:
                self._offsets.clear()
            self._offsets[key] = torch.arange(0, n * per_bag, per_bag, dtype=dtype)
        return self._offsets[key]

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        n, per_bag = ids.shape
        flat = ids.reshape(-1)
        offsets = self.offsets(n, per_bag, flat.dtype)
        pooled: torch.Tensor = torch.ops.quantized.embedding_bag_byte_rowwise_offsets(
            self.packed, flat, offsets, False, 0, False, None, None, False
        )
        return pooled if self.out_dtype == torch.float32 else pooled.to(self.out_dtype)


@dataclass(frozen=True, kw_only=True)
class Int8Plan:
    """What :func:`quantize_int8` did, for the result."""

    tables: int
    dense: str
    rows: str
    linear_int8: int
    linear_fp32: int
    recurrent_int8: int
    engine: str

    def to_dict(self) -> dict[str, object]:
        rows = (f"uint8, per-row fp32 scale and bias ({self.tables} tables)" if self.rows == "int8"
                else f"fp32 ({self.tables} tables)")
        if self.dense == "bf16":
            return {"embedding_rows": rows, "dense": "bf16 weights and activations", "calibration": "none"}
        return {
            "embedding_rows": rows,
            "dense": (
                f"dynamic int8 ({self.linear_int8} Linear, {self.recurrent_int8} GRU): per-channel int8 weights, "
                f"activations quantized per batch to {8 if full_range_activations() else 7} bits; "
                f"{self.linear_fp32} output layer(s) fp32"
            ),
            "engine": self.engine,
            "calibration": "none (dynamic activation scales)",
        }


def _output_layers(model: nn.Module) -> set[str]:
    """Names of the Linear layers whose output is the model's score: 1 or 2 wide, last of their MLP."""
    return {name for name, m in model.named_modules() if isinstance(m, nn.Linear) and m.out_features <= 2}


def quantize_int8(model: nn.Module, dense: str = "int8", rows: str = "int8") -> tuple[nn.Module, Int8Plan]:
    """``model`` (fp32, eval) with ``rows`` embedding rows (one of :data:`ROWS`) and ``dense`` layers
    (one of :data:`DENSE`), converted in place; and the plan. With ``dense="bf16"`` the model takes
    bf16 dense input (and its rows are int8: bf16 everywhere else is ``--precision bf16``)."""
    if dense not in DENSE:
        raise ValueError(f"'dense' must be one of {list(DENSE)} (got {dense!r})")
    if rows not in ROWS or (rows == "fp32" and dense == "bf16"):
        raise ValueError(f"'rows' must be one of {list(ROWS)}, and int8 with dense bf16 (got {rows!r})")
    out_dtype = torch.bfloat16 if dense == "bf16" else torch.float32
    tables = 0
    for module in list(model.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.EmbeddingBag):
                if rows == "int8":
                    setattr(module, child_name, ByteRowwiseBag(child, out_dtype))
                tables += 1
    if dense == "bf16":
        plan = Int8Plan(tables=tables, dense=dense, rows=rows, linear_int8=0, linear_fp32=0, recurrent_int8=0, engine="none")
        return model.to(torch.bfloat16), plan  # the uint8 rows are not floating point: .to leaves them
    torch.backends.quantized.engine = "x86"
    keep = _output_layers(model)
    linears = 0
    for prefix, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.Linear) and f"{prefix}.{child_name}".lstrip(".") not in keep:
                setattr(module, child_name, Int8Linear(child))
                linears += 1
    fuse_relu(model)
    from suite.models.dlrm_v2 import LowRankCrossNet

    for module in list(model.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, LowRankCrossNet):
                setattr(module, child_name, FusedCrossNet(child.down, child.up))
    grus = {name: default_dynamic_qconfig for name, m in model.named_modules() if isinstance(m, nn.GRU)}
    if grus:  # DIEN's extractor: torch's dynamically quantized GRU (per-tensor int8 weights)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.ao.quantization's deprecation notice
            model = quantize_dynamic(model, grus, dtype=torch.qint8, inplace=True)  # type: ignore[no-untyped-call]  # torch.ao.quantization is untyped
    plan = Int8Plan(tables=tables, dense=dense, rows=rows, linear_int8=linears, linear_fp32=len(keep), recurrent_int8=len(grus),
                    engine=torch.backends.quantized.engine)
    return model, plan
