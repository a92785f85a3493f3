"""The unit a backend predicts on."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Batch:
    """N items (user-item pairs) ready for a model.

    Attributes:
        dense: (N, D) float32, already transformed (log1p of the clipped counts).
        sparse: one (N, L_t) int32 array of row ids per table, ids in [0, rows_t).
    """

    dense: np.ndarray
    sparse: tuple[np.ndarray, ...]

    def __len__(self) -> int:
        return int(self.dense.shape[0])
