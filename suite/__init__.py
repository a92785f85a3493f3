"""recsuite: an MLPerf-style benchmark suite for neural recommendation inference.

The engine lives here (CLI, configuration, the LoadGen harness, results); backends and datasets are
installed as ``suite.backends`` and ``suite.datasets``. Importing this package imports neither torch
nor mlperf_loadgen.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
