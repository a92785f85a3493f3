"""MLPerf's DLRM-v2: DLRM with a DCNv2 cross network over multi-hot Criteo features."""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import nn

from suite.models.base import ModelSchema
from suite.models.configs import DLRMv2Config
from suite.models.init import Init
from suite.models.layers import embedding_bags, mlp, normal_


class LowRankCrossNet(nn.Module):
    """DCNv2's cross network with low-rank layers, as torchrec's ``LowRankCrossNet``:
    x_{l+1} = x_0 * (W_l (V_l x_l) + b_l) + x_l, with V_l (rank x width) and W_l (width x rank)."""

    def __init__(self, width: int, layers: int, rank: int, init: Init) -> None:
        super().__init__()
        self.down = nn.ModuleList(nn.Linear(width, rank, bias=False) for _ in range(layers))
        self.up = nn.ModuleList(nn.Linear(rank, width) for _ in range(layers))
        std = math.sqrt(2.0 / (width + rank))
        for down, up in zip(self.down, self.up, strict=False):
            normal_(down.weight, std, init)
            normal_(up.weight, std, init)
            normal_(up.bias, math.sqrt(1.0 / width), init)

    def forward(self, x0: torch.Tensor) -> torch.Tensor:
        x = x0
        for down, up in zip(self.down, self.up, strict=False):
            x = x0 * up(down(x)) + x
        return x


class DLRMv2(nn.Module):
    """DLRM-DCNv2 as MLPerf Inference runs it (``recommendation/dlrm_v2``).

    ``forward(dense (N, 13), sparse [26 x (N, hotness_t)])`` returns logits (N,): the bottom MLP's
    128-vector and the 26 sum-pooled 128-vectors, concatenated (3456 wide), through the cross
    network and the top MLP. Weights are seeded, not MLPerf's trained checkpoint.
    """

    PARTS: ClassVar[dict[str, str]] = {"bottom": "mlp", "embeddings": "embedding", "cross": "mlp", "top": "mlp"}

    def __init__(self, config: DLRMv2Config, schema: ModelSchema, init: Init) -> None:
        super().__init__()
        self.bottom = mlp(config.bottom, init, final_activation=True)
        self.embeddings = embedding_bags(schema, init)
        width = config.interaction_width
        self.cross = LowRankCrossNet(width, config.cross_layers, config.low_rank, init)
        self.top = mlp((width, *config.top), init, final_activation=False)

    def forward(self, dense: torch.Tensor, sparse: list[torch.Tensor]) -> torch.Tensor:
        x = torch.cat([self.bottom(dense), *(bag(ids) for bag, ids in zip(self.embeddings, sparse, strict=False))], dim=1)
        return self.top(self.cross(x)).squeeze(1)
