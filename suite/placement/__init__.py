"""Worker placement: where the backends of a run live (see :mod:`suite.placement.base`).

One lazy registry from placement name to ``module:Class``, as for backends: a placement that needs
an optional package (a cluster's) is imported only when chosen.
"""

from __future__ import annotations

import importlib

from suite.errors import UnknownNameError
from suite.placement.base import (
    LibrarySource,
    Placement,
    PlacementInfo,
    Request,
    RoundTrip,
    Spans,
    WorkerLost,
    WorkerSpec,
)

PLACEMENTS: dict[str, str] = {
    "threads": "suite.placement.local:ThreadPlacement",
    "processes": "suite.placement.local:ProcessPlacement",
}

__all__ = [
    "PLACEMENTS",
    "LibrarySource",
    "Placement",
    "PlacementInfo",
    "Request",
    "RoundTrip",
    "Spans",
    "WorkerLost",
    "WorkerSpec",
    "get_placement",
]


def get_placement(name: str) -> type[Placement]:
    """The placement class registered as ``name``.

    Raises:
        UnknownNameError: ``name`` is not in :data:`PLACEMENTS`.
    """
    try:
        target = PLACEMENTS[name]
    except KeyError:
        raise UnknownNameError("placement", name, PLACEMENTS) from None
    module_name, _, class_name = target.partition(":")
    cls: type[Placement] = getattr(importlib.import_module(module_name), class_name)
    return cls
