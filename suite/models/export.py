"""ONNX export of the zoo's models, with pooled lookups lowered to plain ONNX operators.

ONNX has no EmbeddingBag. Each sum-pooled table (``nn.EmbeddingBag`` over a fixed-size bag, as
every table in the suite is: DeepRecSys's fixed ``num_indices_per_lookup`` and MLPerf's fixed
multi-hot sizes) is rewritten before export into a Gather followed by a sum over the bag axis. The
bag is gathered bag-major, ids transposed to (L, N) so the sum runs over the leading axis and adds
L contiguous (N, E) slabs, which onnxruntime vectorises best (see ``LOWERINGS`` and the README for
the measurements behind the choice). Inputs are ``dense`` (N, D) float32 and ``sparse_<t>``
(N, L_t) int32 with a dynamic N; the output ``scores`` holds the probabilities (sigmoid in fp32).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import logging
import os
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from torch import nn

#: How a pooled table is written in ONNX: "bag-major" (Gather over (L, N) ids, ReduceSum axis 0)
#: or "item-major" (Gather over (N, L) ids, ReduceSum axis 1).
LOWERINGS = ("bag-major", "item-major")
OPSET = 18


class GatherSum(nn.Module):
    """A sum-pooled lookup that exports as Gather + ReduceSum."""

    def __init__(self, weight: torch.Tensor, lowering: str) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight.detach(), requires_grad=False)
        self.num_embeddings, self.embedding_dim = weight.shape
        self.bag_major = lowering == "bag-major"

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if self.bag_major:
            return nn.functional.embedding(ids.t(), self.weight).sum(0)
        return nn.functional.embedding(ids, self.weight).sum(1)


def lower(model: nn.Module, lowering: str = "bag-major") -> nn.Module:
    """A copy of ``model`` with every sum-mode ``nn.EmbeddingBag`` replaced by :class:`GatherSum`."""
    lowered = copy.deepcopy(model)
    for name, module in list(lowered.named_modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.EmbeddingBag):
                if child.mode != "sum":
                    raise ValueError(f"{name}.{child_name}: only sum-pooled bags are lowered (got {child.mode!r})")
                setattr(module, child_name, GatherSum(child.weight, lowering))
    return lowered


class Scored(nn.Module):
    """The model with its sigmoid, taking the sparse inputs as a list (one tensor per table)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, dense: torch.Tensor, sparse: list[torch.Tensor]) -> torch.Tensor:
        return torch.sigmoid(self.model(dense, sparse).float())


def weights_hash(model: nn.Module) -> str:
    """SHA-256 over every parameter and buffer, in order: the export cache key's weight part."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().contiguous().cpu().numpy().tobytes())
    return digest.hexdigest()


def export(model: nn.Module, example_dense: torch.Tensor, example_sparse: list[torch.Tensor], path: Path, lowering: str) -> Path:
    """Export ``model`` (lowered) to ``path`` atomically; large models keep weights in ``path.data``."""
    scored = Scored(lower(model, lowering)).eval()
    n = torch.export.Dim("n", min=1)
    dynamic = {"dense": {0: n}, "sparse": [{0: n} for _ in example_sparse]}
    names = ["dense", *(f"sparse_{t}" for t in range(len(example_sparse)))]
    param_bytes = sum(p.numel() * p.element_size() for p in scored.parameters())
    with staged_output(path) as tmp:
        with torch.inference_mode(False), torch.no_grad(), _quiet():
            program = torch.onnx.export(
                scored,
                (example_dense, example_sparse),
                dynamic_shapes=dynamic,
                input_names=names,
                output_names=["scores"],
                opset_version=OPSET,
                dynamo=True,
                verbose=False,
            )
        assert program is not None
        program.save(str(tmp), external_data=param_bytes > 1_500_000_000)
    return path


@contextlib.contextmanager
def staged_output(path: Path, keep: Callable[[Path], bool] = lambda _produced: True) -> Iterator[Path]:
    """A path beside ``path`` to write to; on success what was written there (the model and its
    external data files, those ``keep`` accepts) replaces ``path``'s, on failure nothing does.

    A reader therefore sees the old file or the whole new one, never half an export.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{path.stem}.", dir=path.parent))
    try:
        yield tmp_dir / path.name
        for produced in tmp_dir.iterdir():
            if keep(produced):
                os.replace(produced, path.parent / produced.name)
    finally:
        for leftover in tmp_dir.iterdir():
            leftover.unlink()
        tmp_dir.rmdir()


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Keep the exporter's progress prints, warnings and log lines out of the user's terminal."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)
