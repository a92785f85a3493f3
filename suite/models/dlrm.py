"""DLRM as DeepRecSys configures it: bottom MLP, sum-pooled tables, concat interaction, top MLP."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from suite.models.base import ModelSchema
from suite.models.configs import DLRMConfig
from suite.models.init import Init
from suite.models.layers import embedding_bags, mlp


class DLRM(nn.Module):
    """DLRM-RMC1/2/3.

    ``forward(dense (N, D) float32, sparse [T x (N, L_t) int])`` returns logits (N,). The
    interaction is DeepRecSys's ``cat``: the bottom MLP's output concatenated with the T pooled
    embeddings, (T + 1) x E wide, fed to the top MLP.
    """

    PARTS: ClassVar[dict[str, str]] = {"bottom": "mlp", "embeddings": "embedding", "top": "mlp"}

    def __init__(self, config: DLRMConfig, schema: ModelSchema, init: Init) -> None:
        super().__init__()
        self.bottom = mlp(config.bottom, init, final_activation=True)
        self.embeddings = embedding_bags(schema, init)
        self.top = mlp((config.top_width, *config.top), init, final_activation=False)

    def forward(self, dense: torch.Tensor, sparse: list[torch.Tensor]) -> torch.Tensor:
        pooled = [bag(ids) for bag, ids in zip(self.embeddings, sparse, strict=False)]
        x = torch.cat([self.bottom(dense), *pooled], dim=1)
        return self.top(x).squeeze(1)
