"""DLRM and DLRM-v2 on the fused kernels: one lookup launch, matmuls with their epilogues.

:func:`fuse` takes a built model on a CUDA device (its weights in bf16 or fp16) and returns a
:class:`FusedDLRM` with the same ``forward(dense, sparse)``:

* the bottom MLP stays torch (13 inputs: nothing to gain), its output written into the front of
  the interaction matrix;
* every table pooled by :func:`suite.backends.kernels.lookup.pooled` in one launch, rows stored as
  ``rows`` says (bf16, fp16, fp8 with a per-row scale, int8 with a per-row scale and bias);
* with ``dense="fp8"`` the cross network and the top MLP (all but its 1-wide last layer) run as
  fp8 e4m3 matmuls: weights with a per-output-channel scale, activations with one static scale
  per tensor calibrated at load on a batch drawn by the suite's synthetic generator for this
  model (amax x :data:`CALIBRATION_MARGIN`, saturating beyond it); each matmul's epilogue writes
  the fp8 input of the next one;
* with ``dense="bf16"`` the same matmuls run in the model's dtype, on Triton (``gemm="triton"``)
  or on cuBLAS followed by one elementwise kernel for the cross step (``gemm="cublas"``);
* under fp8 the lookup also writes the fp8 copy of the interaction matrix; ``residual`` says
  whether the cross layers read x0 and x_l in bf16 or from their fp8 copies, ``fuse_last`` puts the
  1-wide output layer in the last matmul's epilogue, ``gemm`` picks Triton or cuBLAS per weight
  (docs/gpu-kernels.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from suite.backends.kernels import dense as dk
from suite.backends.kernels.lookup import FP8_MAX, SCALES, PackedTables, pack, pooled
from suite.models.base import ModelSchema

#: Calibrated activation amax is multiplied by this before it becomes the fp8 scale, so a batch
#: reaching twice the calibration batch's largest value still does not saturate.
CALIBRATION_MARGIN = 2.0
CALIBRATION_ITEMS = 4096
DENSE_MODES = ("fp8", "bf16")
GEMMS = ("triton", "cublas", "auto")
#: How the fp8 cross layers read x0 and x_l (option ``residual``): ``bf16`` both in the model dtype
#: (x_(l+1) written in bf16 and in fp8); ``x0-fp8`` x0 from the fp8 copy the first matmul reads;
#: ``fp8`` both from their fp8 copies, x_(l+1) written in fp8 alone (a third of the bytes).
RESIDUALS = ("bf16", "x0-fp8", "fp8")
#: With ``gemm=auto``: the GEMM each (dense mode, N, K) weight runs on where it is not Triton.
AUTO_GEMM: dict[tuple[str, int, int], str] = {}


@dataclass
class _Linear:
    """One dense layer as the fused forward runs it."""

    weight: torch.Tensor  # (out, in): fp8 e4m3 or the model dtype
    bias: torch.Tensor | None  # fp32
    w_scale: torch.Tensor | None  # (out,) fp32, fp8 only
    in_scale: float = 1.0  # static scale of the fp8 input


@dataclass
class Calibration:
    """What the fp8 activation scales were computed from, for the result."""

    items: int
    margin: float
    amax: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"items": self.items, "margin": self.margin, "amax": {k: round(v, 6) for k, v in self.amax.items()}}


class FusedDLRM(nn.Module):
    """A DLRM (``cross is None``) or DLRM-v2 forward over the fused kernels; see the module."""

    def __init__(self, bottom: nn.Module, tables: PackedTables, cross: list[tuple[_Linear, _Linear]] | None,
                 top: list[_Linear], relu_top: list[bool], last: nn.Linear | None, *, dim: int, dense_mode: str,
                 gemm: str, dtype: torch.dtype, x0_scale: float, calibration: Calibration | None,
                 residual: str = "bf16", fuse_last: bool = False, bottom_layers: list[tuple[_Linear, bool]] | None = None) -> None:
        super().__init__()
        self.bottom = bottom
        #: The bottom MLP as Triton matmuls with bias and ReLU in their epilogues (the last one
        #: writing straight into the interaction matrix and its fp8 copy); None: torch's modules.
        self.bottom_layers = bottom_layers
        self.tables = tables
        self.cross = cross
        self.top = top
        self.relu_top = relu_top
        self.last = last
        self.dim = dim
        self.dense_mode = dense_mode
        self.gemm = gemm
        self.dtype = dtype
        self.x0_scale = x0_scale
        self.calibration = calibration
        self.residual = residual
        #: The 1-wide last layer as the epilogue of the top MLP's last matmul (Triton only).
        self.fuse_last = fuse_last and last is not None
        self._last_w = last.weight.detach().float().reshape(-1).contiguous() if last is not None else None
        self._last_b = float(last.bias.detach().float().item()) if last is not None and last.bias is not None else 0.0
        #: Best ms per matmul when :meth:`tune` ran at load.
        self.tuned: dict[str, float] = {}

    def layers(self) -> list[tuple[str, _Linear]]:
        """Every matmul of the cross network and the top MLP, by name (``cross0.down``, ``top1``)."""
        named = [(f"cross{i}.{part}", lin) for i, pair in enumerate(self.cross or []) for part, lin in zip(("down", "up"), pair, strict=True)]
        return named + [(f"top{i}", lin) for i, lin in enumerate(self.top)]

    def gemm_of(self, lin: _Linear) -> str:
        """Which GEMM runs ``lin``: ``gemm`` itself, or with ``auto`` the pick :data:`AUTO_GEMM` holds."""
        if self.gemm != "auto":
            return self.gemm
        n, k = lin.weight.shape
        return AUTO_GEMM.get((self.dense_mode, n, k), "triton")

    def describe(self) -> dict[str, Any]:
        """The settings a result records."""
        out: dict[str, Any] = {"rows": self.tables.row_type, "dense": self.dense_mode, "gemm": self.gemm,
                               "row_bytes": self.tables.row_bytes,
                               "row_scales": self.tables.scale_layout}
        if self.dense_mode == "fp8":
            out["residual"] = self.residual
        if self.fuse_last:
            out["fuse_last"] = True
        if self.calibration is not None:
            out["calibration"] = self.calibration.to_dict()
        if self.tuned:
            out["tuned_ms"] = {k: round(v, 4) for k, v in self.tuned.items()}
        if self.gemm == "auto":
            out["gemms"] = {name: self.gemm_of(lin) for name, lin in self.layers()}
        if self.gemm != "cublas":
            out["tiles"] = self.tiles()
        return out

    def tiles(self) -> dict[str, str]:
        """The tile shape each Triton matmul runs with (:func:`suite.backends.kernels.dense.tiles_for`)."""
        fp8 = self.dense_mode == "fp8"
        return {name: dk.tiles_text(dk.tiles_for(fp8, *lin.weight.shape)) for name, lin in self.layers()
                if self.gemm_of(lin) == "triton"}

    def tune(self, m: int) -> dict[str, float]:
        """Pick the fastest tiles (:func:`suite.backends.kernels.dense.tune`) for every Triton matmul of
        this model at batch size ``m``, with its own epilogue; returns the best ms per layer. With
        ``gemm=auto`` under fp8 it also times cuBLAS's GEMM plus the epilogue kernel for each
        weight and records in :data:`AUTO_GEMM` the shapes where that is faster."""
        fp8 = self.dense_mode == "fp8"
        device = self.tables.rows.device
        width = self.dim * (1 + len(self.tables.lookups))
        x = torch.randn(m, width, device=device).to(self.dtype)
        x2 = torch.randn(m, width, device=device).to(self.dtype)
        xq = x.to(torch.float8_e4m3fn) if fp8 else None
        xq2 = x2.to(torch.float8_e4m3fn) if fp8 else None
        q = 1.0 if fp8 else None
        layers: list[tuple[str, _Linear, dict[str, Any]]] = []
        for i, (down, up) in enumerate(self.cross or []):
            layers.append((f"cross{i}.down", down, {"out_dtype": None if fp8 else self.dtype, "q_scale": q}))
            # As the forward reads them: layer 0's x_l is x0 itself (read once).
            cross_in: dict[str, Any] = {"x0": x, "xl": x if i == 0 else x2}
            if fp8 and self.residual == "x0-fp8":
                cross_in = {"x0": xq, "x0_scale": 1.0, "xl": xq if i == 0 else x2, "xl_scale": 1.0}
            elif fp8 and self.residual == "fp8":
                cross_in = {"x0": xq, "x0_scale": 1.0, "xl": xq if i == 0 else xq2, "xl_scale": 1.0}
            last_cross = i == len(self.cross or []) - 1
            out = {"out_dtype": None if fp8 and (last_cross or self.residual == "fp8") else self.dtype}
            layers.append((f"cross{i}.up", up, {"bias": up.bias, "q_scale": q, **cross_in, **out}))
        for i, (layer, relu) in enumerate(zip(self.top, self.relu_top, strict=False)):
            last_top = i == len(self.top) - 1
            epilogue: dict[str, Any] = {"bias": layer.bias, "relu": relu, "q_scale": None if last_top else q,
                                        "out_dtype": None if fp8 and not last_top else self.dtype}
            if last_top and self.fuse_last:
                epilogue = {"bias": layer.bias, "relu": relu, "last": (self._last_w, self._last_b)}
            layers.append((f"top{i}", layer, epilogue))
        best = {}
        for name, layer, epilogue in layers:
            n, k = layer.weight.shape
            if self.gemm == "auto" and fp8 and "last" not in epilogue:
                AUTO_GEMM.pop((self.dense_mode, n, k), None)
            if self.gemm_of(layer) != "triton":
                continue
            timings = dk.tune(m, n, k, fp8=fp8, **epilogue)
            best[name] = min(ms for _, ms in timings) if timings else float("nan")
            if self.gemm == "auto" and fp8 and "last" not in epilogue:
                # cuBLAS's GEMM, then the same epilogue as one kernel: kept where it is faster
                a = torch.randn(m, k, device=device).to(torch.float8_e4m3fn)
                ones = torch.ones(n, device=device)
                rest = {key: v for key, v in epilogue.items() if key != "out_dtype"}
                write = epilogue.get("out_dtype", self.dtype) is not None
                ms = dk.graph_ms(lambda a=a, w=layer.weight, ones=ones, rest=rest, write=write: dk.epilogue(
                    dk.scaled_mm(a, w, 1.0, ones), write_out=write, **rest))
                if ms < best[name]:
                    AUTO_GEMM[(self.dense_mode, n, k)] = "cublas"
                    best[name] = ms
        return best

    def interaction(self, dense: torch.Tensor, sparse: list[torch.Tensor] | torch.Tensor, q_out: torch.Tensor | None = None,
                    write_out: bool = True) -> torch.Tensor | None:
        """The (N, (tables + 1) x dim) matrix the cross network or top MLP reads; with ``q_out``
        also its fp8 copy (scale ``x0_scale``), written by the same kernels; with ``write_out=False``
        only that copy."""
        n = dense.shape[0]
        ids = sparse if isinstance(sparse, torch.Tensor) else torch.cat(list(sparse), dim=1)
        width = self.dim * (1 + len(self.tables.lookups))
        x = torch.empty((n, width), dtype=self.dtype, device=dense.device) if write_out else None
        if self.bottom_layers is not None:
            h: torch.Tensor | None = dense.to(self.dtype)
            for i, (lin, relu) in enumerate(self.bottom_layers):
                assert h is not None
                if i < len(self.bottom_layers) - 1:
                    h, _ = dk.linear(h, lin.weight, lin.bias, relu=relu, out_dtype=self.dtype)
                else:  # into the matrix's first columns and, under fp8, its copy: no second pass
                    dk.linear(h, lin.weight, lin.bias, relu=relu, out=None if x is None else x[:, :self.dim],
                              out_dtype=None if x is None else self.dtype,
                              q_out=None if q_out is None else q_out[:, :self.dim],
                              q_scale=None if q_out is None else self.x0_scale)
        else:
            h = self.bottom(dense.to(self.dtype))
            if x is not None:
                x[:, :self.dim] = h
            if q_out is not None:
                dk.epilogue(h, q_scale=self.x0_scale, write_out=False, q_out=q_out[:, :self.dim])
        pooled(self.tables, ids, x, self.dim, q_out=q_out, q_scale=self.x0_scale, write_out=write_out)
        return x

    def _fp8_layer(self, lin: _Linear, a: torch.Tensor, *, q_scale: float | None, out_dtype: torch.dtype | None,
                   relu: bool = False, cross: dict[str, Any] | None = None,
                   last: tuple[torch.Tensor, float] | None = None) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """One fp8 matmul and its epilogue, on Triton or on cuBLAS then one elementwise kernel."""
        cross = cross or {}
        if self.gemm_of(lin) == "cublas" and last is None:
            y = dk.scaled_mm(a, lin.weight, lin.in_scale, lin.w_scale)  # type: ignore[arg-type]  # ModuleList items read as Tensor | Module in torch's stubs
            return dk.epilogue(y, lin.bias, relu=relu, q_scale=q_scale, write_out=out_dtype is not None, **cross)
        return dk.linear(a, lin.weight, lin.bias, relu=relu, a_scale=lin.in_scale, w_scale=lin.w_scale,
                         out_dtype=out_dtype, q_scale=q_scale, last=last, **cross)

    def forward(self, dense: torch.Tensor, sparse: list[torch.Tensor] | torch.Tensor) -> torch.Tensor:
        fp8 = self.dense_mode == "fp8"
        xq: torch.Tensor | None = None
        if fp8:
            n = dense.shape[0]
            xq = torch.empty((n, self.dim * (1 + len(self.tables.lookups))), dtype=torch.float8_e4m3fn, device=dense.device)
            x0 = self.interaction(dense, sparse, q_out=xq, write_out=self.residual != "fp8")
        else:
            x0 = self.interaction(dense, sparse)
        x0q = xq
        x = x0
        logits: torch.Tensor | None = None
        for i, (down, up) in enumerate(self.cross or []):
            last_cross = i == len(self.cross or []) - 1
            if fp8:
                assert xq is not None
                next_scale = self.top[0].in_scale if last_cross else self.cross[i + 1][0].in_scale  # type: ignore[index]  # ModuleList items read as Tensor | Module in torch's stubs
                _, hq = self._fp8_layer(down, xq, q_scale=up.in_scale, out_dtype=None)
                assert hq is not None
                if self.residual == "fp8":  # x0 and x_l from their fp8 copies; x_(l+1) kept in fp8 alone
                    cross = {"x0": x0q, "x0_scale": self.x0_scale, "xl": xq, "xl_scale": down.in_scale}
                    out_dtype = None
                elif self.residual == "x0-fp8":
                    cross = {"x0": x0q, "x0_scale": self.x0_scale, "xl": x0q if i == 0 else x,
                             "xl_scale": self.x0_scale}
                    out_dtype = None if last_cross else self.dtype
                else:
                    cross = {"x0": x0, "xl": x}
                    out_dtype = None if last_cross else self.dtype
                out, xq = self._fp8_layer(up, hq, q_scale=next_scale, out_dtype=out_dtype, cross=cross)
                x = out if out is not None else x
            elif self.gemm_of(down) == "triton":
                h, _ = dk.linear(x, down.weight, out_dtype=self.dtype)
                assert h is not None
                out, _ = dk.linear(h, up.weight, up.bias, x0=x0, xl=x, out_dtype=self.dtype)
                assert out is not None
                x = out
            else:
                y = torch.mm(torch.mm(x, down.weight.t()), up.weight.t())
                x = dk.epilogue(y, up.bias, x0=x0, xl=x)[0]
        h = x
        for i, (layer, relu) in enumerate(zip(self.top, self.relu_top, strict=False)):
            last_top = i == len(self.top) - 1
            fold = (self._last_w, self._last_b) if last_top and self.fuse_last and self.gemm_of(layer) == "triton" else None
            if fp8:
                assert xq is not None
                q_scale = None if last_top else self.top[i + 1].in_scale
                h_out, xq = self._fp8_layer(layer, xq, q_scale=q_scale, out_dtype=self.dtype if last_top else None,
                                            relu=relu, last=fold)  # type: ignore[arg-type]  # ModuleList items read as Tensor | Module in torch's stubs
                if fold is not None:
                    logits = h_out
                elif h_out is not None:
                    h = h_out
            elif self.gemm_of(layer) == "triton":
                h_out, _ = dk.linear(h, layer.weight, layer.bias, relu=relu, out_dtype=self.dtype, last=fold)  # type: ignore[arg-type]  # ModuleList items read as Tensor | Module in torch's stubs
                assert h_out is not None
                if fold is not None:
                    logits = h_out
                else:
                    h = h_out
            else:
                h = torch.nn.functional.linear(h, layer.weight, layer.bias.to(self.dtype) if layer.bias is not None else None)
                h = torch.relu(h) if relu else h
        if logits is not None:
            return logits
        if self.last is not None:
            h = self.last(h)
        return h.squeeze(1)


def _linears(seq: nn.Sequential) -> tuple[list[nn.Linear], list[bool]]:
    mods = list(seq)
    linears = [m for m in mods if isinstance(m, nn.Linear)]
    relus = [i + 1 < len(mods) and isinstance(mods[i + 1], nn.ReLU) for i, m in enumerate(mods) if isinstance(m, nn.Linear)]
    return linears, relus


def calibration_batch(schema: ModelSchema, items: int, seed: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """Dense inputs and ids drawn as the suite's synthetic generator draws them: Zipf-popular rows
    scattered over each table, every id of a multi-hot bag drawn on its own (MLPerf's expansion
    table would cost gigabytes at full scale, and calibration needs only representative values)."""
    from suite.datasets import synthetic

    rng = np.random.default_rng([seed, items, 8])
    raw = synthetic.features(schema, items, rng)
    dense = np.log1p(np.clip(raw.dense, 0, None)).astype(np.float32)
    sparse = []
    for t in schema.tables:
        a = int(rng.integers(1, max(t.rows, 2))) | 1
        ranks = synthetic.zipf_ranks(rng, t.rows, (items, t.lookups))
        sparse.append(((ranks * a + int(rng.integers(0, t.rows))) % t.rows).astype(np.int32))
    return dense, sparse


def _calibrate(model: nn.Module, schema: ModelSchema, seed: int, items: int) -> dict[str, float]:
    """amax of every fp8 matmul's input, from the eager model on :func:`calibration_batch`."""
    dense_np, sparse_np = calibration_batch(schema, items, seed)
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    dense = torch.from_numpy(dense_np).to(device=device, dtype=dtype)
    sparse = [torch.from_numpy(s).to(device) for s in sparse_np]
    amax: dict[str, float] = {}
    hooks = []

    def record(name: str, which: str) -> Any:
        def hook(_mod: nn.Module, args: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
            t = args[0] if which == "in" else out
            amax[name] = max(amax.get(name, 0.0), float(t.detach().float().abs().max()))
        return hook

    cross = getattr(model, "cross", None)
    if cross is not None:
        for i, (down, up) in enumerate(zip(cross.down, cross.up, strict=False)):
            hooks.append(down.register_forward_hook(record(f"cross{i}.x", "in")))
            hooks.append(up.register_forward_hook(record(f"cross{i}.h", "in")))
    for i, lin in enumerate(_linears(model.top)[0]):
        hooks.append(lin.register_forward_hook(record(f"top{i}.x", "in")))
    try:
        with torch.inference_mode():
            model(dense, sparse)
    finally:
        for h in hooks:
            h.remove()
    return amax


def fuse(model: nn.Module, schema: ModelSchema, *, rows: str, dense: str, gemm: str = "triton", seed: int = 0,
         release: bool = True, row_scales: str = "inline", residual: str = "bf16", fuse_last: bool = False) -> FusedDLRM:
    """A :class:`FusedDLRM` computing ``model`` (a built DLRM or DLRM-v2 of ``schema``, on a CUDA
    device, in bf16 or fp16; ``seed`` seeds the fp8 calibration batch). With ``release`` the
    model's tables are freed as they are packed (it is spent afterwards), so a full-scale model
    never holds two copies of more than one table. ``row_scales`` says where 8-bit rows keep their
    scales (:data:`suite.backends.kernels.lookup.SCALES`: with each row, apart, one per table)."""
    if dense not in DENSE_MODES:
        raise ValueError(f"'dense' must be one of {list(DENSE_MODES)} (got {dense!r})")
    if gemm not in GEMMS:
        raise ValueError(f"'gemm' must be one of {list(GEMMS)} (got {gemm!r})")
    if residual not in RESIDUALS or (residual != "bf16" and dense != "fp8"):
        raise ValueError(f"'residual' must be one of {list(RESIDUALS) if dense == 'fp8' else ['bf16']} (got {residual!r})")
    bags = list(model.embeddings)  # type: ignore[attr-defined, arg-type]  # torch types a submodule as Tensor | Module; this is the DLRM's ModuleList of bags
    dtype = bags[0].weight.dtype
    dim = bags[0].embedding_dim
    fp8 = dense == "fp8"
    amax = _calibrate(model, schema, seed, CALIBRATION_ITEMS) if fp8 else {}

    def scale(name: str) -> float:
        return max(amax.get(name, 1.0), 1e-6) * CALIBRATION_MARGIN / FP8_MAX

    def convert(lin: nn.Linear, in_name: str) -> _Linear:
        bias = lin.bias.detach().float().contiguous() if lin.bias is not None else None
        if not fp8:
            return _Linear(weight=lin.weight.detach().contiguous(), bias=bias, w_scale=None)
        wq, ws = dk.quantize_weight(lin.weight.detach())
        return _Linear(weight=wq, bias=bias, w_scale=ws, in_scale=scale(in_name))

    cross_layers: list[tuple[_Linear, _Linear]] | None = None
    cross = getattr(model, "cross", None)
    if cross is not None:
        cross_layers = [(convert(d, f"cross{i}.x"), convert(u, f"cross{i}.h")) for i, (d, u) in enumerate(zip(cross.down, cross.up, strict=False))]
    top_linears, top_relus = _linears(model.top)  # type: ignore[arg-type]  # torch types a submodule as Tensor | Module; this is an nn.Sequential
    last: nn.Linear | None = None
    if top_linears[-1].out_features == 1:  # a 1-wide output: no matmul to speak of
        last = top_linears.pop()
        top_relus.pop()
    top = [convert(lin, f"top{i}.x") for i, lin in enumerate(top_linears)]
    bottom_linears, bottom_relus = _linears(model.bottom)  # type: ignore[arg-type]  # torch types a submodule as Tensor | Module; this is an nn.Sequential
    bottom_layers = None
    if len(list(model.bottom)) == len(bottom_linears) + sum(bottom_relus):  # Linear and ReLU alone: Triton's
        bottom_layers = [(_Linear(weight=lin.weight.detach().contiguous(), w_scale=None,
                                  bias=lin.bias.detach().float().contiguous() if lin.bias is not None else None), relu)
                         for lin, relu in zip(bottom_linears, bottom_relus, strict=True)]
    x0_name = "cross0.x" if cross is not None else "top0.x"
    with torch.no_grad():  # the parameters themselves, so that release frees their storage
        tables = pack([b.weight for b in bags], [int(lk) for lk in schema.lookups], rows, release=release,
                      scales=row_scales)
    calibration = Calibration(items=CALIBRATION_ITEMS, margin=CALIBRATION_MARGIN, amax=amax) if fp8 else None
    return FusedDLRM(model.bottom, tables, cross_layers, top, top_relus, last,  # type: ignore[arg-type]  # torch types a submodule as Tensor | Module; these are Modules
                     dim=dim, dense_mode=dense, gemm=gemm, dtype=dtype,
                     x0_scale=scale(x0_name), calibration=calibration, residual=residual, fuse_last=fuse_last,
                     bottom_layers=bottom_layers)


#: Models :func:`fuse` knows: their bags are plain fixed-size sum pools feeding a concatenation.
FUSABLE = ("dlrm-rmc1", "dlrm-rmc2", "dlrm-rmc3", "dlrm-v2")
#: Row formats offered, and each precision's default.
ROW_CHOICES = ("bf16", "fp16", "fp8", "int8")
DEFAULT_ROWS = {"fp8": "fp8", "bf16": "bf16", "fp16": "fp16"}
#: Defaults of the dense options (and of where 8-bit rows keep their scales) by dense mode (fp16
#: runs as bf16's mode), the fastest measured side by side in one run on the H200
#: (benchmarks/results/gpu_kernels_h200_s4/k1.txt: MLPerf's DLRM-v2, full 26 tables, one
#: 16,384-item forward replayed as a CUDA graph, AUC against the teacher's on 65,536 items):
#:
#: - fp8: fp8 rows with one scale per table, ``residual=fp8 fuse_last=1``, Triton's GEMMs (the
#:   persistent TMA kernel where it won the tile sweep): 0.765 ms (79.3k samples/s of GPU time;
#:   1.454 ms at 32,768 items, 83.5k), AUC 99.36% (the 99% gate), against 0.799 ms for int8 rows
#:   with a table scale and 0.838 ms for int8 rows with per-row scales (99.40%); ``gemm=auto`` with
#:   ``tune=1`` picked Triton for every layer (0.764 ms).
#: - bf16: Triton's GEMMs 1.263 ms (48.1k), AUC 99.99% (the 99.9% gate), against cuBLAS's with the
#:   separate epilogue 1.298 ms (100.00%).
#: dlrm-v3's ``--option attention``: ``auto`` (the default) the Gluon kernel with q, k and v in fp8
#: (``qkv-fp8``) where it runs, else the Triton one (:func:`attention_mode`); ``gluon`` the Hopper kernel with asynchronous
#: products and specialized warps in bf16
#: (suite.backends.kernels.hstu_wg: bf16 on sm_90; on an H200, 0.977 ms against the Triton kernel's
#: 1.111 for 8 MLPerf-size requests, and dlrm-v3 Offline 1,019.3 requests/s); ``model`` the Triton kernel in the
#: model's dtype; ``fp8`` its two products in fp8 e4m3 (suite.backends.kernels.hstu, ``fp8=True``);
#: ``qk-fp8`` the Gluon kernel with q and k in fp8 e4m3 (q one scale per token and head, quantized
#: in the kernel; k one per head from a bound on the layer's weights), the products with v in bf16
#: (suite.backends.kernels.hstu_wg, ``qk_fp8=True``): on an H200 1,070.2 requests/s Offline at the
#: 1 M cap, passing the 99.9% gate (session 26); ``qkv-fp8`` that kernel with ``p v`` in e4m3 too (v
#: one scale per head from a bound on the layer's weights, p cast in the kernel; on an H200, once
#: its v^T pass wrote 16 bytes a thread, Offline 1,136.0 requests/s against qk-fp8's 1,073.0 at the
#: 100 M cap in one call, passing the gate at 1 M and 100 M, Server 1,022.5 VALID at 0.9x, session
#: 30; docs/dlrm-v3.md).
ATTENTION_MODES = ("auto", "gluon", "model", "fp8", "qk-fp8", "qkv-fp8")
#: The modes that run the Gluon kernel, refused where it cannot run.
GLUON_MODES = ("gluon", "qk-fp8", "qkv-fp8")
#: dlrm-v3's ``--option projections``: its STU layers' two products in ``bf16`` (the default), both
#: in fp8 e4m3 with row-wise scales (``fp8``) or the output projection alone (``fp8-out``):
#: suite.models.dlrm_v3_fp8.
PROJECTIONS = ("bf16", "fp8", "fp8-out")
DEFAULTS: dict[str, dict[str, str]] = {
    "fp8": {"gemm": "triton", "residual": "fp8", "fuse_last": "1", "row_scales": "table"},
    "bf16": {"gemm": "triton", "residual": "bf16", "fuse_last": "0", "row_scales": "inline"},
}


def _gluon_runs(model: nn.Module, precision: str) -> bool | str:
    """True where dlrm-v3's Gluon attention kernel runs this model (bf16 on an sm_90 GPU, a Triton
    with Gluon), else what stands in its way, as the end of a sentence."""
    device = next(model.parameters()).device
    if precision != "bf16":
        return f"runs bf16 only (got {precision!r})"
    if device.type != "cuda" or torch.cuda.get_device_capability(device)[0] != 9:
        return f"needs an sm_90 GPU (Hopper: H100, H200; got {torch.cuda.get_device_name(device) if device.type == 'cuda' else device})"
    try:
        from suite.backends.kernels import hstu_wg  # noqa: F401
    except ImportError as exc:
        return f"needs a Triton with Gluon ({exc})"
    return True


def attention_mode(attention: str, runs: bool | str, tune: str) -> str:
    """The attention dlrm-v3's ``--option attention`` runs: ``auto`` is ``qkv-fp8`` where the
    Gluon kernel runs (``runs`` True, from :func:`_gluon_runs`), else ``model``; any other mode is
    itself. Refused: a Gluon mode where the kernel cannot run (``runs`` says why), and ``tune`` 1
    with ``qkv-fp8``, whose kernel has one launch shape."""
    from suite.errors import BackendUnavailableError, ConfigError

    if attention in GLUON_MODES and runs is not True:
        raise BackendUnavailableError(f"'attention' {attention} {runs}")
    mode = attention if attention != "auto" else "qkv-fp8" if runs is True else "model"
    if mode == "qkv-fp8" and tune == "1":
        got = "attention=qkv-fp8" if attention == mode else f"attention={attention}, which is qkv-fp8 on this GPU"
        raise ConfigError(f"'tune' 1 times the shapes of attention=qk-fp8 and gluon; qkv-fp8 has one (got {got})")
    return mode


def for_backend(model: nn.Module, spec: Any, precision: str, options: dict[str, str]) -> FusedDLRM:
    """torch-cuda's hook: :func:`fuse` with the backend's ``--precision`` and its options ``rows``
    (bf16|fp16|fp8|int8), ``row_scales`` (inline|apart|table: where 8-bit rows keep their scales),
    ``gemm`` (triton|cublas|auto: :data:`AUTO_GEMM` per weight), ``residual`` (fp8 only,
    :data:`RESIDUALS`), ``fuse_last`` (0|1: the 1-wide last layer in the epilogue of the matmul
    before it) and ``tune`` (0|1: time the candidate tiles of every matmul at 16,384 items during
    load), checked here; defaults in :data:`DEFAULTS`."""
    from suite.errors import BackendUnavailableError, ConfigError, one_of

    if spec.name == "dlrm-v3" and precision != "fp8":  # its attention is the fused part
        from suite.backends.kernels.hstu import ATTENTION_OUT, use_fused_attention

        tune = options.get("tune", "0")
        one_of("tune", tune, ("0", "1"))
        attention = options.get("attention", ATTENTION_MODES[0])
        one_of("attention", attention, ATTENTION_MODES)
        runs = _gluon_runs(model, precision) if attention in ("auto", *GLUON_MODES) else False
        picked = attention_mode(attention, runs, tune)
        gluon = runs is True
        attention_out = options.get("attention_out", "bf16")
        one_of("attention_out", attention_out, tuple(ATTENTION_OUT))
        if "attention_out" in options and not gluon:
            raise ConfigError(f"'attention_out' applies to the Gluon attention (attention=auto on sm_90, gluon, qk-fp8 or qkv-fp8), "
                              f"not to attention={attention}" + (f" (the Gluon kernel {runs})" if attention == "auto" else ""))
        projections = options.get("projections", PROJECTIONS[0])
        one_of("projections", projections, PROJECTIONS)
        if projections != "bf16" and precision != "bf16":
            raise ConfigError(f"'projections' {projections} needs 'precision' bf16 (got {precision!r})")
        # tune=1: time the attention's tile shapes on MLPerf-size requests at load (a few seconds).
        return use_fused_attention(model, tune_tiles=tune == "1", fp8=picked == "fp8", gluon=gluon,  # type: ignore[return-value]  # it returns the nn.Module it was given, patched
                                   projections=projections, qk_fp8=picked in ("qk-fp8", "qkv-fp8"),
                                   attention_out=attention_out, v_fp8=picked == "qkv-fp8")
    if spec.name not in FUSABLE:
        raise BackendUnavailableError(
            f"torch-cuda's fused kernels ('--precision fp8', 'fused=1') run {list(FUSABLE)} only (got {spec.name!r})")
    if precision not in DEFAULT_ROWS:
        raise ConfigError(f"'fused=1' needs 'precision' one of {sorted(DEFAULT_ROWS)} (got {precision!r})")
    rows = options.get("rows", DEFAULT_ROWS[precision])
    mode = "fp8" if precision == "fp8" else "bf16"
    gemm = options.get("gemm", DEFAULTS[mode]["gemm"])
    residual = options.get("residual", DEFAULTS[mode]["residual"])
    fuse_last = options.get("fuse_last", DEFAULTS[mode]["fuse_last"])
    one_of("rows", rows, ROW_CHOICES)
    one_of("gemm", gemm, GEMMS)
    one_of("residual", residual, RESIDUALS if mode == "fp8" else ("bf16",))
    one_of("fuse_last", fuse_last, ("0", "1"))
    tune = options.get("tune", "0")
    row_scales = options.get("row_scales", DEFAULTS[mode]["row_scales"])
    one_of("tune", tune, ("0", "1"))
    one_of("row_scales", row_scales, SCALES)
    out = fuse(model, spec.schema, rows=rows, dense=mode, gemm=gemm, seed=spec.seed,
               row_scales=row_scales, residual=residual, fuse_last=fuse_last == "1")
    if tune == "1":
        out.tuned = out.tune(16384)
    return out
