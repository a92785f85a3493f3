"""The model zoo: one literal registry of architectures, built into ``torch.nn.Module`` on demand.

Importing this package does not import torch; :func:`build` does.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from suite.errors import ConfigError, UnknownNameError
from suite.inputs import MAX_SEED, parse_int
from suite.models.base import (
    DEFAULT_ROWS,
    SCALES,
    ModelConfig,
    ModelSchema,
    ModelSize,
    TableSpec,
    default_rows,
    parse_scale,
)
from suite.models.configs import ALL
from suite.models.weights import WeightsFile

if TYPE_CHECKING:
    import torch

#: Version of the weight initialisation scheme; datasets labelled by a model's teacher carry it in
#: their cache key, so labels made with other weights are never reused.
WEIGHTS_VERSION = 2

#: Every model the suite knows, by the name the CLI spells (``suite.models.configs.ALL``).
MODELS: dict[str, ModelConfig] = {c.name: c for c in ALL}

__all__ = [
    "DEFAULT_ROWS",
    "MODELS",
    "SCALES",
    "WEIGHTS_VERSION",
    "ModelConfig",
    "ModelSchema",
    "ModelSize",
    "ModelSpec",
    "TableSpec",
    "WeightsFile",
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
    """What fixes a model's weights: architecture, scale (row cap), the weight seed and, for a
    multi-task model, the number of tasks (None: the config's default); ``weights``, a trained
    weights file that :func:`build` loads over the seeded ones (``--weights``).

    Two backends given equal specs hold bit-identical fp32 weights (on any device), which is what lets the data
    generator's reference model (the teacher) and every backend agree.
    """

    name: str
    scale: str = "small"
    seed: int = 0
    tasks: int | None = None
    weights: WeightsFile | None = None

    def __post_init__(self) -> None:
        get_config(self.name)
        parse_scale(self.scale)
        parse_int("seed", self.seed, 0, MAX_SEED)
        if self.tasks is not None:
            if not self.multi_task:
                multi = sorted(n for n, c in MODELS.items() if hasattr(c, "tasks"))
                raise ConfigError(f"'tasks' applies only to the multi-task models {multi} (got {self.tasks!r} for {self.name!r})")
            _ = self.config  # building it runs the config's own check of the task count

    @property
    def config(self) -> ModelConfig:
        """The registered architecture, with this spec's task count applied."""
        config = get_config(self.name)
        if self.tasks is not None:
            config = dataclasses.replace(config, tasks=self.tasks)  # type: ignore[call-arg]  # only multi-task configs have 'tasks', checked in __post_init__
        return config

    @property
    def schema(self) -> ModelSchema:
        return self.config.schema(parse_scale(self.scale))

    @property
    def multi_task(self) -> bool:
        return hasattr(get_config(self.name), "tasks")

    @property
    def task_count(self) -> int:
        """The model's outputs per item: the multi-task models' ``tasks``, else 1."""
        return int(getattr(self.config, "tasks", 1))

    def key(self) -> str:
        """A short name that identifies the weights, for cache folders."""
        tasks = f"-t{self.task_count}" if self.multi_task else ""
        return f"{self.name}-{self.scale}-s{self.seed}{tasks}"

    def to_dict(self) -> dict[str, Any]:
        weights = None if self.weights is None else self.weights.to_dict()
        return {"name": self.name, "scale": self.scale, "seed": self.seed, "tasks": self.task_count, "weights": weights}


def build(spec: ModelSpec, *, device: torch.device | str = "cpu", dtype: torch.dtype | None = None,
          threads: int = 0, rows: dict[str, torch.Tensor] | None = None) -> torch.nn.Module:
    """Build the seeded model for ``spec`` in eval mode, its parameters made in ``dtype`` (fp32 when
    None) straight on ``device``, chunk by chunk (:mod:`suite.models.init`), with ``spec.weights``
    loaded over the seeded initialisation when given.

    The weights are the same on every device and machine for a given spec: no full fp32 copy of a
    model is made in host memory, so a model larger than the host's memory loads onto a GPU.

    ``rows``: embedding tables (``nn.Embedding`` submodules, by name) made of only these rows of
    the seeded table, in this order (int64 row ids): the caller looks them up by position, so a
    model whose tables would not fit can still score the ids a dataset uses. Not with weights.
    """
    import torch

    from suite.models.init import Init, materialize, on_meta

    config = spec.config
    cls = config.module_class()
    if rows and spec.weights is not None:
        raise ValueError("rows: a model with loaded weights has no seeded rows to take")
    init = Init()
    weight_rows: dict[str, tuple[torch.Tensor, int]] = {}
    with on_meta():
        model: torch.nn.Module = cls(config, spec.schema, init)
        for name, ids in (rows or {}).items():
            whole = model.get_submodule(name)
            if not isinstance(whole, torch.nn.Embedding):
                raise TypeError(f"rows: {name!r} is not an embedding table")
            weight_rows[f"{name}.weight"] = (ids, whole.num_embeddings)
            part = torch.nn.Embedding(len(ids), whole.embedding_dim)
            init.draws[id(part.weight)] = (part.weight, init.draws.pop(id(whole.weight))[1])
            parent, _, leaf = name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, leaf, part)
    model = materialize(model, init, spec.seed, device=device, dtype=dtype or torch.float32, threads=threads,
                        rows=weight_rows)
    if spec.weights is not None:
        from suite.models.weights import load_into

        load_into(model, spec.weights, spec)
    return model.eval()
