"""Data for recsuite: the Criteo format, the synthetic generator, query sizes and the npy cache.

Installed as ``suite.datasets`` so that nothing shadows the popular ``datasets`` distribution.
"""

from __future__ import annotations

from suite.datasets.batch import Batch

__all__ = ["Batch"]
