"""The architectures, as DeepRecSys and MLPerf configure them (``shared/reference/deeprecsys.md`` 1b)."""

from __future__ import annotations

from dataclasses import dataclass

from suite.models.base import ModelConfig, ModelSchema, TableSpec, cap


@dataclass(frozen=True, kw_only=True)
class DLRMConfig(ModelConfig):
    """DLRM with a concat interaction, as DeepRecSys builds its RMC1/2/3 configs.

    ``bottom`` starts with the dense input width and ends with the embedding dimension;
    ``top`` lists the top MLP's output widths (its input is (T + 1) x E, the concatenation of the
    bottom MLP's output and the T pooled embeddings).
    """

    bottom: tuple[int, ...]
    top: tuple[int, ...]
    tables: int
    rows: int
    dim: int
    lookups: int

    def schema(self, row_cap: int | None) -> ModelSchema:
        return ModelSchema(
            model=self.name,
            dense=self.bottom[0],
            tables=tuple(
                TableSpec(name=f"t{i}", rows=cap(self.rows, row_cap), dim=self.dim, lookups=self.lookups)
                for i in range(self.tables)
            ),
        )


_DLRM = "suite.models.dlrm:DLRM"

RMC1 = DLRMConfig(name="dlrm-rmc1", module=_DLRM, bottom=(128, 64, 32), top=(256, 64, 1),
                  tables=8, rows=4_000_000, dim=32, lookups=80)
RMC2 = DLRMConfig(name="dlrm-rmc2", module=_DLRM, bottom=(256, 128, 64), top=(128, 64, 1),
                  tables=32, rows=500_000, dim=64, lookups=120)
RMC3 = DLRMConfig(name="dlrm-rmc3", module=_DLRM, bottom=(2560, 1024, 256, 32), top=(512, 256, 1),
                  tables=10, rows=2_000_000, dim=32, lookups=20)
