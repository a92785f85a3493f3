"""Deep Interest Evolution Network (Zhou et al., AAAI 2019) with DeepRecSys's sizes."""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from suite.models.base import ModelSchema
from suite.models.configs import DIENConfig
from suite.models.init import Init
from suite.models.layers import embedding_bag, mlp, normal_, sequence, two_class_logit, uniform_


class AUGRU(nn.Module):
    """GRU with attentional update gate (DIEN, eq. 6): the update gate u_t is scaled by the
    attention score a_t, u'_t = a_t * u_t, and h_t = (1 - u'_t) * h_{t-1} + u'_t * h~_t, so steps
    unrelated to the candidate ad barely move the interest state."""

    def __init__(self, input_size: int, hidden: int, init: Init) -> None:
        super().__init__()
        self.input = nn.Linear(input_size, 3 * hidden)
        self.recurrent = nn.Linear(hidden, 3 * hidden)
        bound = 1.0 / math.sqrt(hidden)
        for p in (*self.input.parameters(), *self.recurrent.parameters()):
            uniform_(p, bound, init)
        self.hidden = hidden

    def forward(self, x: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
        """x (N, T, I), attention (N, T) -> the final state (N, H)."""
        gates_x = self.input(x)
        h = x.new_zeros(x.shape[0], self.hidden)
        for t in range(x.shape[1]):
            xr, xu, xn = gates_x[:, t].chunk(3, dim=1)
            hr, hu, hn = self.recurrent(h).chunk(3, dim=1)
            reset = torch.sigmoid(xr + hr)
            update = attention[:, t : t + 1] * torch.sigmoid(xu + hu)
            candidate = torch.tanh(xn + reset * hn)
            h = (1.0 - update) * h + update * candidate
        return h


class DIEN(nn.Module):
    """DIEN: a GRU interest extractor over the behaviour sequence, attention of each interest state
    on the candidate ad (a_t = softmax_t(h_t W e_ad)), an AUGRU interest evolution layer, and a
    2-class predictor over [final interest, profile, ad, context].

    Inputs: no dense features; sparse ``[user (N, 1), behaviours (N, T), ad (N, 1), context (N, 1)]``.
    Returns logits (N,): l1 - l0 of the predictor, so its sigmoid is the softmax's click probability.

    Differences from DeepRecSys, on purpose: DeepRecSys's ``dien.py`` builds both recurrent layers
    from Caffe2's ``BasicRNN`` (a plain tanh RNN, hidden 64) with a softmax attention added to the
    RNN output; this keeps DIEN's real GRU and AUGRU (hidden 64). The behaviours and the candidate
    ad share one item table, as in the paper. The auxiliary loss of the paper only shapes training
    and is absent from inference. The final interest state is RMS-normalised (no weights) before
    the predictor: with softmax attention over 40 steps the AUGRU's updates are small and its state
    would weigh a twentieth of the unit-scale embeddings beside it, leaving the sequence nearly
    unused by the seeded reference model that labels the data; a trained model learns that scale.
    """

    PARTS: ClassVar[dict[str, str]] = {
        "user": "embedding", "items": "embedding", "context": "embedding",
        "extractor": "attention", "attention": "attention", "evolution": "attention", "predictor": "mlp",
    }

    def __init__(self, config: DIENConfig, schema: ModelSchema, init: Init) -> None:
        super().__init__()
        e, h = config.dim, config.hidden
        self.user = embedding_bag(schema.table("user"), init)
        self.items = embedding_bag(schema.table("behaviours"), init)
        self.context = embedding_bag(schema.table("context"), init)
        self.extractor = nn.GRU(e, h, batch_first=True)
        for p in self.extractor.parameters():
            uniform_(p, 1.0 / math.sqrt(h), init)
        self.attention = nn.Linear(e, h, bias=False)
        # std 1/sqrt(E): attention scores spread over a few units, so the softmax picks steps out.
        normal_(self.attention.weight, 1.0 / math.sqrt(e), init)
        self.evolution = AUGRU(h, h, init)
        self.predictor = mlp((h + 3 * e, *config.predictor), init, final_activation=False)
        self.hidden = h

    def forward(self, dense: torch.Tensor, sparse: list[torch.Tensor]) -> torch.Tensor:
        user_ids, behaviour_ids, ad_ids, context_ids = sparse
        behaviours = sequence(self.items, behaviour_ids, 1)
        ad = self.items(ad_ids)
        interests, _ = self.extractor(behaviours)
        scores = torch.einsum("nth,nh->nt", interests, self.attention(ad))
        final = F.rms_norm(self.evolution(interests, torch.softmax(scores, dim=1)), (self.hidden,))
        x = torch.cat([final, self.user(user_ids), ad, self.context(context_ids)], dim=1)
        return two_class_logit(self.predictor(x))
