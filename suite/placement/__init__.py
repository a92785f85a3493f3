"""Worker placement: where the backends of a run live (see :mod:`suite.placement.base`).

One lazy registry from placement name to ``module:Class``, as for backends: a placement that needs
an optional package (a cluster's) is imported only when chosen. A run chooses its placement by name
(:func:`chosen`): ``--devices`` and ``--processes`` take ``processes``, ``--cluster NAME`` or
``--cluster NAME://ADDRESS`` the placement registered as NAME that declares an ``address_form``;
DeepRecSched's ``pool`` option takes ``processes`` or ``threads``.
"""

from __future__ import annotations

import importlib
from typing import Any

from suite.errors import ConfigError, UnknownNameError
from suite.inputs import IN_PROCESS
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
    "ray": "suite.placement.ray:RayPlacement",
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
    "chosen",
    "cluster_placement",
    "get_placement",
    "placed_here",
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


def cluster_placement(text: str) -> type[Placement]:
    """The placement ``--cluster TEXT`` chooses: ``NAME`` or ``NAME://ADDRESS``, NAME a registered
    placement that declares an ``address_form`` (it checks the rest).

    Raises:
        ConfigError: NAME is no such placement, or the placement refuses the address.
    """
    clusters = {name: cls for name in PLACEMENTS if (cls := get_placement(name)).address_form}
    placement = clusters.get(text.partition("://")[0])
    if placement is None:
        raise ConfigError(f"'cluster' must be {' or '.join(c.address_form for c in clusters.values())} (got {text!r})")
    placement.check_address(text)
    return placement


def placed_here(config: Any) -> bool:
    """Whether ``config`` (a ``RunConfig``) places its backend's workers on this host (``--devices``
    other than ``in-process``, or ``--processes``)."""
    return (config.devices is not None and config.devices != IN_PROCESS) or config.processes is not None


def chosen(config: Any) -> type[Placement] | None:
    """The placement a run (``config`` a ``RunConfig``) asks for by its options, from the registry;
    None: the backend runs in this process, on the harness's threads."""
    if config.cluster is not None:
        return cluster_placement(config.cluster)
    if placed_here(config):
        return get_placement("processes")
    return None
