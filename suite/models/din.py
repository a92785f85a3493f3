"""Deep Interest Network (Zhou et al., KDD 2018) with DeepRecSys's sizes, run as intended."""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import nn

from suite.models.base import ModelSchema
from suite.models.configs import DINConfig
from suite.models.init import Init
from suite.models.layers import embedding_bag, mlp, sequence, two_class_logit


class LocalActivationUnit(nn.Module):
    """DIN's attention: a weight w_i = MLP([b_i, a, b_i * a]) per behaviour b_i given the candidate
    ad a, and the weighted sum of the behaviours. No softmax, as in the paper, so the weights keep
    the intensity of a user's interest."""

    def __init__(self, dim: int, hidden: tuple[int, ...], init: Init) -> None:
        super().__init__()
        self.mlp = mlp((3 * dim, *hidden, 1), init, final_activation=False)

    def forward(self, behaviours: torch.Tensor, ad: torch.Tensor) -> torch.Tensor:
        """behaviours (N, B, E), ad (N, E) -> (N, E)."""
        a = ad.unsqueeze(1).expand_as(behaviours)
        weights = self.mlp(torch.cat([behaviours, a, behaviours * a], dim=2))
        return (weights * behaviours).sum(dim=1)


class DIN(nn.Module):
    """DIN: user profile, a behaviour sequence, the candidate ad and the context.

    Inputs: no dense features; sparse ``[user (N, k), behaviours (N, B x k), ad (N, k),
    context (N, k)]`` with k ids summed per vector. Returns logits (N,): the difference of the
    2-class predictor's outputs, so its sigmoid is the softmax's click probability.

    Differences from DeepRecSys, on purpose: DeepRecSys's scripts ran DIN with one behaviour table
    (its expansion to 251 tables is skipped, see deeprecsys.md 1b); this runs ``behaviours`` steps
    (251 by default, 753 behaviour lookups). The behaviours share one item table with the candidate
    ad, as in the DIN paper, where DeepRecSys gives each its own table; so DIN here is invariant to
    the order of the behaviours. The activation unit reads [b, a, b * a] (DeepRecSys: [b, a, b + a],
    whose first layer cannot compare b with a). Activations are ReLU (the paper: PReLU/Dice). The
    pooled interest is scaled by 1/sqrt(B) so it stays on the scale of the other predictor inputs;
    a trained model would fold that constant into the predictor's first layer.
    """

    PARTS: ClassVar[dict[str, str]] = {
        "user": "embedding", "items": "embedding", "context": "embedding",
        "attention": "attention", "predictor": "mlp",
    }

    def __init__(self, config: DINConfig, schema: ModelSchema, init: Init) -> None:
        super().__init__()
        self.user = embedding_bag(schema.table("user"), init)
        self.items = embedding_bag(schema.table("behaviours"), init)
        self.context = embedding_bag(schema.table("context"), init)
        self.attention = LocalActivationUnit(config.dim, config.attention, init)
        self.predictor = mlp((4 * config.dim, *config.predictor), init, final_activation=False)
        self.step = config.ids_per_step
        self.scale = 1.0 / math.sqrt(config.behaviours)

    def forward(self, dense: torch.Tensor, sparse: list[torch.Tensor]) -> torch.Tensor:
        user_ids, behaviour_ids, ad_ids, context_ids = sparse
        behaviours = sequence(self.items, behaviour_ids, self.step)
        ad = self.items(ad_ids)
        interest = self.attention(behaviours, ad) * self.scale
        x = torch.cat([self.user(user_ids), interest, ad, self.context(context_ids)], dim=1)
        return two_class_logit(self.predictor(x))
