"""Neural collaborative filtering, as DeepRecSys configures it."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from suite.models.base import ModelSchema
from suite.models.configs import NCFConfig
from suite.models.init import Init
from suite.models.layers import embedding_bags, mlp


class NCF(nn.Module):
    """NCF (He et al., WWW 2017) with DeepRecSys's layer sizes.

    Inputs: no dense features; sparse ``[user_mf, item_mf, user_mlp, item_mlp]``, one id each
    (the MLP-path tables read the same user and item ids as the MF tables). Returns logits (N,).

    Where this departs from He et al.: the GMF branch *sums* the user and item vectors, as
    DeepRecSys's ``ncf.py`` does, where the paper takes their element-wise product; and the
    predictor is 128-64-1 (DeepRecSys's) rather than a single linear layer.
    """

    PARTS: ClassVar[dict[str, str]] = {"embeddings": "embedding", "tower": "mlp", "predictor": "mlp"}

    def __init__(self, config: NCFConfig, schema: ModelSchema, init: Init) -> None:
        super().__init__()
        self.embeddings = embedding_bags(schema, init)
        self.tower = mlp(config.tower, init, final_activation=True)
        self.predictor = mlp((config.dim + config.tower[-1], *config.predictor), init, final_activation=False)

    def forward(self, dense: torch.Tensor, sparse: list[torch.Tensor]) -> torch.Tensor:
        user_mf, item_mf, user_mlp, item_mlp = (bag(ids) for bag, ids in zip(self.embeddings, sparse, strict=False))
        gmf = user_mf + item_mf
        tower = self.tower(torch.cat([user_mlp, item_mlp], dim=1))
        return self.predictor(torch.cat([gmf, tower], dim=1)).squeeze(1)
