"""Wide and Deep and its multi-task variant, as DeepRecSys configures them."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from suite.models.base import ModelSchema
from suite.models.configs import MTWnDConfig, WnDConfig
from suite.models.init import Init
from suite.models.layers import embedding_bags, mlp


class WideAndDeep(nn.Module):
    """WnD as DeepRecSys builds it: the dense features and the pooled embeddings concatenated
    into one MLP. DeepRecSys has no separate linear "wide" part and no bottom MLP; neither has this.

    ``forward(dense (N, D), sparse [T x (N, 1)])`` returns logits (N,).
    """

    PARTS: ClassVar[dict[str, str]] = {"embeddings": "embedding", "top": "mlp"}

    def __init__(self, config: WnDConfig, schema: ModelSchema, init: Init) -> None:
        super().__init__()
        self.embeddings = embedding_bags(schema, init)
        self.top = mlp((config.top_width, *config.top), init, final_activation=False)

    def forward(self, dense: torch.Tensor, sparse: list[torch.Tensor]) -> torch.Tensor:
        x = torch.cat([dense, *(bag(ids) for bag, ids in zip(self.embeddings, sparse, strict=False))], dim=1)
        return self.top(x).squeeze(1)


class MultiTaskWideAndDeep(nn.Module):
    """MT-WnD: WnD's input through a shared MLP, then one head per task.

    Returns logits (N, tasks): one click-through score per task.
    """

    PARTS: ClassVar[dict[str, str]] = {"embeddings": "embedding", "shared": "mlp", "heads": "mlp"}

    def __init__(self, config: MTWnDConfig, schema: ModelSchema, init: Init) -> None:
        super().__init__()
        self.embeddings = embedding_bags(schema, init)
        self.shared = mlp((config.shared_width, *config.shared), init, final_activation=True)
        self.heads = nn.ModuleList(
            mlp((config.shared[-1], *config.head), init, final_activation=False) for _ in range(config.tasks)
        )

    def forward(self, dense: torch.Tensor, sparse: list[torch.Tensor]) -> torch.Tensor:
        x = torch.cat([dense, *(bag(ids) for bag, ids in zip(self.embeddings, sparse, strict=False))], dim=1)
        shared = self.shared(x)
        return torch.cat([head(shared) for head in self.heads], dim=1)
