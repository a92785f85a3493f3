"""Building blocks shared by the models, with DLRM's initialisation (drawn by :mod:`suite.models.init`)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from suite.models.base import ModelSchema, TableSpec
from suite.models.init import Init


def mlp(widths: Sequence[int], init: Init, *, final_activation: bool) -> nn.Sequential:
    """Linear layers ``widths[0] -> widths[1] -> ...`` with ReLU between them.

    Weights follow DLRM's initialisation (normal with std sqrt(2 / (fan_in + fan_out)), bias std
    sqrt(1 / fan_out)), recorded in ``init`` so a seed fixes every weight.
    """
    layers: list[nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:], strict=False)):
        linear = nn.Linear(fan_in, fan_out)
        init.normal(linear.weight, math.sqrt(2.0 / (fan_in + fan_out)))
        init.normal(linear.bias, math.sqrt(1.0 / fan_out))
        layers.append(linear)
        if i < len(widths) - 2 or final_activation:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def embedding_bag(table: TableSpec, init: Init) -> nn.EmbeddingBag:
    """A sum-pooled table whose pooled output (or sequence step) has roughly unit variance per
    component.

    DLRM's own U(+-sqrt(1/rows)) init makes large tables nearly silent, so a teacher model built
    with it would ignore its embeddings and a corrupted table would go unnoticed by the accuracy
    gate. Normal with std 1/sqrt(ids summed per vector) keeps the pooled vectors on the scale of
    the MLP activations.
    """
    bag = nn.EmbeddingBag(table.rows, table.dim, mode="sum")
    per_vector = table.lookups if table.pooled else table.step
    init.normal(bag.weight, 1.0 / math.sqrt(per_vector))
    return bag


def sequence(bag: nn.EmbeddingBag, ids: torch.Tensor, step: int) -> torch.Tensor:
    """Look up a sequence table: ids (N, S x step) become (N, S, E), each step the sum of its ids."""
    n = ids.shape[0]
    return bag(ids.reshape(-1, step)).reshape(n, -1, bag.embedding_dim)


def embedding_bags(schema: ModelSchema, init: Init) -> nn.ModuleList:
    """:func:`embedding_bag` for every table of ``schema``, in order."""
    return nn.ModuleList(embedding_bag(t, init) for t in schema.tables)


def normal_(tensor: torch.Tensor, std: float, init: Init) -> None:
    """Have ``tensor`` drawn from N(0, std^2) (see :mod:`suite.models.init`)."""
    init.normal(tensor, std)


def uniform_(tensor: torch.Tensor, bound: float, init: Init) -> None:
    """Have ``tensor`` drawn from U(-bound, bound) (see :mod:`suite.models.init`)."""
    init.uniform(tensor, bound)


def two_class_logit(logits: torch.Tensor) -> torch.Tensor:
    """l1 - l0 of a 2-class predictor's (N, 2) output, so that sigmoid gives softmax's class 1."""
    return logits[:, 1] - logits[:, 0]
