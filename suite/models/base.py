"""Model schemas: what a model reads, described without importing torch.

Notation used throughout: N items (user-item pairs) in a batch, D dense features, T embedding
tables, L_t lookups (ids pooled) per item in table t, E embedding dimension.

A :class:`ModelConfig` is the architecture as data; ``schema(row_cap)`` turns it into the
:class:`ModelSchema` the data generator, the Criteo reader and every backend work from, with each
table's rows capped for small machines (``--scale``).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field

from suite.errors import ConfigError

#: Row caps per named scale. ``full`` keeps the paper's table sizes.
SCALES: dict[str, int | None] = {"tiny": 1_000, "small": 100_000, "full": None}

#: Items (user-item pairs) in a generated dataset, per named scale (a row-cap scale uses ``small``'s).
DEFAULT_ROWS: dict[str, int] = {"tiny": 16_384, "small": 65_536, "full": 1_048_576}


def parse_scale(scale: str) -> int | None:
    """Return the row cap for ``scale``: a name in :data:`SCALES` or a positive integer."""
    if scale in SCALES:
        return SCALES[scale]
    if scale.isdigit() and int(scale) > 0:
        return int(scale)
    raise ConfigError(
        f"'scale' must be one of {sorted(SCALES)} or a positive row cap (got {scale!r})"
    )


def default_rows(scale: str) -> int:
    """Items in a generated dataset when ``--rows`` is not given."""
    return DEFAULT_ROWS.get(scale, DEFAULT_ROWS["small"])


@dataclass(frozen=True, kw_only=True)
class TableSpec:
    """One embedding table: ``rows`` x ``dim``, read ``lookups`` times per item.

    ``pooled`` tables sum their lookups into one vector (EmbeddingBag); sequence tables
    (``pooled=False``) keep one vector per lookup, for attention and recurrent models.
    """

    name: str
    rows: int
    dim: int
    lookups: int = 1
    pooled: bool = True

    def __post_init__(self) -> None:
        for name in ("rows", "dim", "lookups"):
            if getattr(self, name) < 1:
                raise ConfigError(f"table {self.name!r}: {name!r} must be >= 1 (got {getattr(self, name)!r})")


@dataclass(frozen=True, kw_only=True)
class ModelSchema:
    """The features a model reads: ``dense`` float inputs and ``tables`` of categorical ids."""

    model: str
    dense: int
    tables: tuple[TableSpec, ...]
    tasks: int = 1

    @property
    def lookups(self) -> tuple[int, ...]:
        """Ids per item for each table, in table order."""
        return tuple(t.lookups for t in self.tables)


@dataclass(frozen=True, kw_only=True)
class ModelConfig(abc.ABC):
    """Architecture of one model as data. Subclasses add their layer sizes."""

    name: str
    #: ``module:Class`` of the ``torch.nn.Module`` that implements it, imported lazily.
    module: str = field(repr=False)

    @abc.abstractmethod
    def schema(self, row_cap: int | None) -> ModelSchema:
        """The feature schema, with every table's rows capped at ``row_cap`` (None: no cap)."""


def cap(rows: int, row_cap: int | None) -> int:
    """``rows`` limited to ``row_cap``."""
    return rows if row_cap is None else min(rows, row_cap)
