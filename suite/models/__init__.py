"""The model zoo: one literal registry of architectures, built into ``torch.nn.Module`` on demand.

Importing this package does not import torch; :func:`build` does.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from suite.errors import UnknownNameError
from suite.models.base import (
    DEFAULT_ROWS,
    SCALES,
    ModelConfig,
    ModelSchema,
    TableSpec,
    default_rows,
    parse_scale,
)
from suite.models.configs import RMC1, RMC2, RMC3

if TYPE_CHECKING:
    import torch

#: Every model the suite knows, by the name the CLI spells.
MODELS: dict[str, ModelConfig] = {c.name: c for c in (RMC1, RMC2, RMC3)}

__all__ = [
    "DEFAULT_ROWS",
    "MODELS",
    "SCALES",
    "ModelConfig",
    "ModelSchema",
    "ModelSpec",
    "TableSpec",
    "build",
    "default_rows",
    "get_config",
    "parse_scale",
]


def get_config(name: str) -> ModelConfig:
    """The architecture registered as ``name``."""
    try:
        return MODELS[name]
    except KeyError:
        raise UnknownNameError("model", name, MODELS) from None


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """What fixes a model's weights: architecture, scale (row cap) and the weight seed.

    Two backends given equal specs hold bit-identical fp32 weights, which is what lets the data
    generator's reference model (the teacher) and every backend agree.
    """

    name: str
    scale: str = "small"
    seed: int = 0

    def __post_init__(self) -> None:
        get_config(self.name)
        parse_scale(self.scale)

    @property
    def config(self) -> ModelConfig:
        return get_config(self.name)

    @property
    def schema(self) -> ModelSchema:
        return self.config.schema(parse_scale(self.scale))

    def key(self) -> str:
        """A short name that identifies the weights, for cache folders."""
        return f"{self.name}-{self.scale}-s{self.seed}"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "scale": self.scale, "seed": self.seed}


def build(spec: ModelSpec) -> torch.nn.Module:
    """Build the seeded fp32 model for ``spec`` on the CPU, in eval mode."""
    import torch

    config = spec.config
    module_name, _, class_name = config.module.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    generator = torch.Generator().manual_seed(spec.seed)
    model: torch.nn.Module = cls(config, spec.schema, generator)
    return model.eval()
