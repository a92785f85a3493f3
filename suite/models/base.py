"""Model schemas: what a model reads, described without importing torch.

Notation used throughout: N items (user-item pairs) in a batch, D dense features, T embedding
tables, L_t lookups (ids pooled) per item in table t, E embedding dimension.

A :class:`ModelConfig` is the architecture as data; ``schema(row_cap)`` turns it into the
:class:`ModelSchema` the data generator, the Criteo reader and every backend work from, with each
table's rows capped for small machines (``--scale``).
"""

from __future__ import annotations

import abc
import importlib
from dataclasses import dataclass, field
from typing import Any

from suite.errors import ConfigError

#: Row caps per named scale. ``full`` keeps the paper's table sizes.
SCALES: dict[str, int | None] = {"tiny": 1_000, "small": 100_000, "full": None}

#: Items (user-item pairs) in a generated dataset, per named scale (a row-cap scale uses ``small``'s).
DEFAULT_ROWS: dict[str, int] = {"tiny": 16_384, "small": 65_536, "full": 1_048_576}


def parse_scale(scale: str) -> int | None:
    """Return the row cap for ``scale``: a name in :data:`SCALES` or a positive integer."""
    if scale in SCALES:
        return SCALES[scale]
    # ASCII digits only: str.isdigit() accepts '²' and int() reads '٣' as 3. Ids are int32.
    if isinstance(scale, str) and scale.isascii() and scale.isdigit() and len(scale) <= 10 and 0 < int(scale) < 2**31:
        return int(scale)
    raise ConfigError(
        f"'scale' must be one of {sorted(SCALES)} or a positive row cap below 2**31 (got {scale!r})"
    )


def default_rows(scale: str) -> int:
    """Items in a generated dataset when ``--rows`` is not given."""
    return DEFAULT_ROWS.get(scale, DEFAULT_ROWS["small"])


@dataclass(frozen=True, kw_only=True)
class TableSpec:
    """One embedding table: ``rows`` x ``dim``, read ``lookups`` times per item.

    ``pooled`` tables sum their lookups into one vector (EmbeddingBag); sequence tables
    (``pooled=False``) keep one vector per step, for attention and recurrent models: a step sums
    ``step`` consecutive ids, so a sequence table holds ``lookups // step`` steps.

    The remaining fields say how the ids relate to each other, for the model and the generator:

    * ``shares``: the table whose embedding rows these ids index (DIN's candidate ad and the
      behaviour sequence share one item table); a sharing table owns no parameters.
    * ``ids_from``: the table whose raw ids this one reads too (NCF's user id feeds both its
      matrix-factorisation and its MLP table), each hashed into its own rows.
    * ``multi_hot``: the data hold one id per item, as Criteo does, and MLPerf's multi-hot table
      expands it to ``lookups`` ids (DLRM-v2).
    * ``interest``: the share of steps the generator draws from the item's few interest clusters
      instead of the table's Zipf popularity (1.0 for a behaviour sequence).
    """

    name: str
    rows: int
    dim: int
    lookups: int = 1
    pooled: bool = True
    step: int = 1
    shares: str | None = None
    ids_from: str | None = None
    multi_hot: bool = False
    interest: float = 0.0

    def __post_init__(self) -> None:
        for name in ("rows", "dim", "lookups", "step"):
            if getattr(self, name) < 1:
                raise ConfigError(f"table {self.name!r}: {name!r} must be >= 1 (got {getattr(self, name)!r})")
        if self.lookups % self.step:
            raise ConfigError(f"table {self.name!r}: 'lookups' must be a multiple of 'step' (got {self.lookups!r})")
        if not 0.0 <= self.interest <= 1.0:
            raise ConfigError(f"table {self.name!r}: 'interest' must be in [0, 1] (got {self.interest!r})")
        if self.multi_hot and not self.pooled:
            raise ConfigError(f"table {self.name!r}: a multi-hot table must be pooled")

    @property
    def steps(self) -> int:
        """Vectors a sequence table yields per item (1 for a pooled table)."""
        return 1 if self.pooled else self.lookups // self.step

    @property
    def file_lookups(self) -> int:
        """Ids per item in a Criteo file: one for a multi-hot table, else ``lookups``."""
        return 1 if self.multi_hot else self.lookups

    @property
    def owns_rows(self) -> bool:
        return self.shares is None


@dataclass(frozen=True, kw_only=True)
class ModelSchema:
    """The features a model reads: ``dense`` float inputs and ``tables`` of categorical ids."""

    model: str
    dense: int
    tables: tuple[TableSpec, ...]
    tasks: int = 1

    def __post_init__(self) -> None:
        by_name = {t.name: t for t in self.tables}
        if len(by_name) != len(self.tables):
            raise ConfigError(f"model {self.model!r}: table names must be unique")
        for t in self.tables:
            if t.shares is not None:
                owner = by_name.get(t.shares)
                if owner is None or owner.shares is not None or (owner.rows, owner.dim) != (t.rows, t.dim):
                    raise ConfigError(f"table {t.name!r}: 'shares' must name a table of the same rows and dim (got {t.shares!r})")
            if t.ids_from is not None:
                source = by_name.get(t.ids_from)
                if source is None or source.file_lookups != t.file_lookups:
                    raise ConfigError(f"table {t.name!r}: 'ids_from' must name a table of the same lookups (got {t.ids_from!r})")

    @property
    def lookups(self) -> tuple[int, ...]:
        """Ids per item for each table, in table order (as the model reads them)."""
        return tuple(t.lookups for t in self.tables)

    @property
    def file_lookups(self) -> tuple[int, ...]:
        """Ids per item for each table as a Criteo file holds them (multi-hot tables hold one)."""
        return tuple(t.file_lookups for t in self.tables)

    def table(self, name: str) -> TableSpec:
        return next(t for t in self.tables if t.name == name)

    def index(self, name: str) -> int:
        return next(i for i, t in enumerate(self.tables) if t.name == name)


#: Dense FLOPs that cost as much time as one byte of gathered embedding rows on a CPU (its FLOP
#: rate over its random-gather bandwidth); it only ranks the parts for :attr:`ModelSize.dominated_by`.
FLOPS_PER_GATHERED_BYTE = 10


@dataclass(frozen=True, kw_only=True)
class DenseCost:
    """The dense part of a model: its parameters and multiply-accumulates per item, split into
    MLP (fully connected layers, DCN cross layers) and attention (attention units and RNN cells)."""

    parameters: int
    mlp_macs: int
    attention_macs: int = 0


@dataclass(frozen=True, kw_only=True)
class ModelSize:
    """What one item costs, computed from the schema: the numbers ``suite models`` prints.

    FLOPs count a multiply-accumulate as two and leave out biases, activations and pooling sums;
    bytes count the fp32 embedding rows gathered (every lookup, duplicates included).
    """

    tables: int
    parameters: int
    embedding_parameters: int
    embedding_bytes_per_item: int
    mlp_flops_per_item: int
    attention_flops_per_item: int

    @property
    def dense_flops_per_item(self) -> int:
        return self.mlp_flops_per_item + self.attention_flops_per_item

    @property
    def dominated_by(self) -> str:
        """``embedding``, ``MLP`` or ``attention``: the part with the largest estimated time, joined
        by ``+`` with any other part within a factor of two of it."""
        parts = {
            "embedding": self.embedding_bytes_per_item * FLOPS_PER_GATHERED_BYTE,
            "MLP": self.mlp_flops_per_item,
            "attention": self.attention_flops_per_item,
        }
        ranked = sorted(parts.items(), key=lambda kv: -kv[1])
        top = ranked[0][1]
        return "+".join(name for name, cost in ranked if cost > 0 and 2 * cost >= top)


def mlp_cost(widths: tuple[int, ...] | list[int]) -> DenseCost:
    """Parameters and MACs of linear layers ``widths[0] -> widths[1] -> ...`` (with biases)."""
    pairs = list(zip(widths[:-1], widths[1:], strict=False))
    return DenseCost(parameters=sum(i * o + o for i, o in pairs), mlp_macs=sum(i * o for i, o in pairs))


def add(*costs: DenseCost) -> DenseCost:
    """The sum of several dense costs."""
    return DenseCost(
        parameters=sum(c.parameters for c in costs),
        mlp_macs=sum(c.mlp_macs for c in costs),
        attention_macs=sum(c.attention_macs for c in costs),
    )


@dataclass(frozen=True, kw_only=True)
class ModelConfig(abc.ABC):
    """Architecture of one model as data. Subclasses add their layer sizes."""

    name: str
    #: ``module:Class`` of the ``torch.nn.Module`` that implements it, imported lazily.
    module: str = field(repr=False)

    def module_class(self) -> Any:
        """The class :attr:`module` names, imported now: what ``suite.models.build`` instantiates,
        and where a backend reads a class attribute such as ``KEEP_FP32`` without building."""
        module_name, _, class_name = self.module.partition(":")
        return getattr(importlib.import_module(module_name), class_name)

    @abc.abstractmethod
    def schema(self, row_cap: int | None) -> ModelSchema:
        """The feature schema, with every table's rows capped at ``row_cap`` (None: no cap)."""

    @abc.abstractmethod
    def dense_cost(self, schema: ModelSchema) -> DenseCost:
        """Parameters and MACs per item of everything but the embedding tables."""

    def default_rows(self, scale: str) -> int:
        """Samples in a generated dataset when ``--rows`` is not given (:func:`default_rows`)."""
        return default_rows(scale)

    def size(self, row_cap: int | None) -> ModelSize:
        """The model's size and per-item cost at ``row_cap``, from the schema alone (no torch)."""
        schema = self.schema(row_cap)
        dense = self.dense_cost(schema)
        embedding = sum(t.rows * t.dim for t in schema.tables if t.owns_rows)
        return ModelSize(
            tables=sum(1 for t in schema.tables if t.owns_rows),
            parameters=embedding + dense.parameters,
            embedding_parameters=embedding,
            embedding_bytes_per_item=sum(t.lookups * t.dim * 4 for t in schema.tables),
            mlp_flops_per_item=2 * dense.mlp_macs,
            attention_flops_per_item=2 * dense.attention_macs,
        )


def cap(rows: int, row_cap: int | None) -> int:
    """``rows`` limited to ``row_cap``."""
    return rows if row_cap is None else min(rows, row_cap)
