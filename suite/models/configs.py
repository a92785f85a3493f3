"""The architectures, as DeepRecSys and MLPerf configure them.

Sources: ``shared/reference/deeprecsys.md`` section 1b (what the DeepRecSys code builds) for the
eight DeepRecSys models, ``mlperf.md`` and deeprecsys.md section 6 for MLPerf's DLRM-v2. Each
config is one frozen dataclass; ``schema`` says what the model reads and ``dense_cost`` what its
layers cost, both without torch, so ``suite models`` stays light.

Size: this module is over 450 lines because it is the one table of every model's architecture
(:data:`ALL`), each config beside its costs (dlrm-v3's per jagged request too, which torch-cuda
sizes Offline batches by); split per model, ``suite models`` would read ten modules for one table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from suite.errors import ConfigError
from suite.models.base import DenseCost, ModelConfig, ModelSchema, TableSpec, add, cap, mlp_cost

if TYPE_CHECKING:
    import numpy as np


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

    @property
    def top_width(self) -> int:
        """The top MLP's input: the bottom MLP's output beside the pooled tables."""
        return (self.tables + 1) * self.dim

    def dense_cost(self, schema: ModelSchema) -> DenseCost:
        return add(mlp_cost(self.bottom), mlp_cost((self.top_width, *self.top)))


@dataclass(frozen=True, kw_only=True)
class NCFConfig(ModelConfig):
    """Neural collaborative filtering as DeepRecSys builds it: a user and an item id, each looked
    up in a matrix-factorisation table (``mf_rows``) and an MLP-path table (``mlp_rows``).

    ``tower`` is the MLP path (input: the two MLP embeddings concatenated); ``predictor`` lists
    the output widths after concatenating the GMF vector with the tower's output.
    """

    mf_rows: int = 140_000
    mlp_rows: int = 28_000
    dim: int = 64
    tower: tuple[int, ...] = (128, 256, 256, 128, 64)
    predictor: tuple[int, ...] = (64, 1)

    def __post_init__(self) -> None:
        if self.tower[0] != 2 * self.dim:
            raise ConfigError(f"{self.name}: 'tower' must start at 2 x dim = {2 * self.dim} (got {self.tower[0]})")

    def schema(self, row_cap: int | None) -> ModelSchema:
        mf, mlp = cap(self.mf_rows, row_cap), cap(self.mlp_rows, row_cap)
        return ModelSchema(
            model=self.name,
            dense=0,
            tables=(
                TableSpec(name="user_mf", rows=mf, dim=self.dim),
                TableSpec(name="item_mf", rows=mf, dim=self.dim),
                TableSpec(name="user_mlp", rows=mlp, dim=self.dim, ids_from="user_mf"),
                TableSpec(name="item_mlp", rows=mlp, dim=self.dim, ids_from="item_mf"),
            ),
        )

    def dense_cost(self, schema: ModelSchema) -> DenseCost:
        return add(mlp_cost(self.tower), mlp_cost((self.dim + self.tower[-1], *self.predictor)))


@dataclass(frozen=True, kw_only=True)
class WnDConfig(ModelConfig):
    """Wide and Deep as DeepRecSys builds it: ``dense`` features passed straight through,
    concatenated with ``tables`` pooled single-id embeddings, into the ``top`` MLP."""

    dense: int = 512
    tables: int = 27
    rows: int = 1_000_000
    dim: int = 32
    top: tuple[int, ...] = (1024, 512, 256, 1)

    def schema(self, row_cap: int | None) -> ModelSchema:
        return ModelSchema(
            model=self.name,
            dense=self.dense,
            tables=tuple(
                TableSpec(name=f"t{i}", rows=cap(self.rows, row_cap), dim=self.dim) for i in range(self.tables)
            ),
        )

    @property
    def top_width(self) -> int:
        """The top MLP's input: the dense features beside the pooled tables."""
        return self.dense + self.tables * self.dim

    def dense_cost(self, schema: ModelSchema) -> DenseCost:
        return mlp_cost((self.top_width, *self.top))


@dataclass(frozen=True, kw_only=True)
class MTWnDConfig(ModelConfig):
    """Multi-task Wide and Deep: WnD's input into a ``shared`` MLP, then one ``head`` per task.

    ``rows`` lists every table's rows (DeepRecSys: 41 x 500k and 2 x 5M). ``tasks`` defaults to 3
    (DeepRecSys's own default of 1 is not multi-task); ``suite run --tasks N`` changes it and the
    weights, data and cache key follow.
    """

    dense: int = 512
    rows: tuple[int, ...] = (500_000,) * 41 + (5_000_000,) * 2
    dim: int = 32
    shared: tuple[int, ...] = (1024, 512)
    head: tuple[int, ...] = (256, 128, 1)
    tasks: int = 3

    def __post_init__(self) -> None:
        if self.tasks < 1:
            raise ConfigError(f"'tasks' must be >= 1 (got {self.tasks!r})")

    def schema(self, row_cap: int | None) -> ModelSchema:
        return ModelSchema(
            model=self.name,
            dense=self.dense,
            tables=tuple(
                TableSpec(name=f"t{i}", rows=cap(rows, row_cap), dim=self.dim) for i, rows in enumerate(self.rows)
            ),
            tasks=self.tasks,
        )

    @property
    def shared_width(self) -> int:
        """The shared MLP's input: the dense features beside the pooled tables."""
        return self.dense + len(self.rows) * self.dim

    def dense_cost(self, schema: ModelSchema) -> DenseCost:
        shared = mlp_cost((self.shared_width, *self.shared))
        return add(shared, *[mlp_cost((self.shared[-1], *self.head))] * self.tasks)


@dataclass(frozen=True, kw_only=True)
class DINConfig(ModelConfig):
    """Deep Interest Network: user profile, a sequence of ``behaviours``, the candidate ad and the
    context, each a sum of ``ids_per_step`` ids (DeepRecSys's 3 lookups per table).

    The behaviours and the candidate ad index one item table, as in the DIN paper, so the local
    activation unit compares vectors of one space. ``attention`` lists the activation unit's hidden
    widths over [behaviour, ad, behaviour * ad]; ``predictor`` the output widths over
    [profile, attention-pooled behaviours, ad, context]. ``ad_interest`` is the share of candidate
    ads the generator draws from the user's own interests.
    """

    user_rows: int = 1_000_000
    item_rows: int = 10_000_000
    context_rows: int = 10_000_000
    dim: int = 32
    ids_per_step: int = 3
    behaviours: int = 251
    attention: tuple[int, ...] = (36,)
    predictor: tuple[int, ...] = (200, 80, 2)
    ad_interest: float = 0.5

    def __post_init__(self) -> None:
        if self.behaviours < 1:
            raise ConfigError(f"'behaviours' must be >= 1 (got {self.behaviours!r})")

    def schema(self, row_cap: int | None) -> ModelSchema:
        k, items = self.ids_per_step, cap(self.item_rows, row_cap)
        return ModelSchema(
            model=self.name,
            dense=0,
            tables=(
                TableSpec(name="user", rows=cap(self.user_rows, row_cap), dim=self.dim, lookups=k),
                TableSpec(name="behaviours", rows=items, dim=self.dim, lookups=self.behaviours * k, pooled=False,
                          step=k, interest=1.0),
                TableSpec(name="ad", rows=items, dim=self.dim, lookups=k, shares="behaviours", interest=self.ad_interest),
                TableSpec(name="context", rows=cap(self.context_rows, row_cap), dim=self.dim, lookups=k),
            ),
        )

    def dense_cost(self, schema: ModelSchema) -> DenseCost:
        unit = mlp_cost((3 * self.dim, *self.attention, 1))
        return add(
            DenseCost(parameters=unit.parameters, mlp_macs=0, attention_macs=self.behaviours * unit.mlp_macs),
            mlp_cost((4 * self.dim, *self.predictor)),
        )


@dataclass(frozen=True, kw_only=True)
class DIENConfig(ModelConfig):
    """Deep Interest Evolution Network: a ``sequence`` of behaviours through a GRU interest
    extractor, then a GRU with attentional update gate (AUGRU) steered by the candidate ad, and
    a ``predictor`` over [final interest, profile, ad, context].

    Tables as DeepRecSys sizes them (500k profile, 5M ad, 5M context), except that the behaviour
    steps and the candidate ad index one item table, as in the DIEN paper.
    """

    user_rows: int = 500_000
    item_rows: int = 5_000_000
    context_rows: int = 5_000_000
    dim: int = 32
    sequence: int = 40
    hidden: int = 64
    predictor: tuple[int, ...] = (200, 80, 2)
    ad_interest: float = 0.5

    def schema(self, row_cap: int | None) -> ModelSchema:
        items = cap(self.item_rows, row_cap)
        return ModelSchema(
            model=self.name,
            dense=0,
            tables=(
                TableSpec(name="user", rows=cap(self.user_rows, row_cap), dim=self.dim),
                TableSpec(name="behaviours", rows=items, dim=self.dim, lookups=self.sequence, pooled=False, interest=1.0),
                TableSpec(name="ad", rows=items, dim=self.dim, shares="behaviours", interest=self.ad_interest),
                TableSpec(name="context", rows=cap(self.context_rows, row_cap), dim=self.dim),
            ),
        )

    def dense_cost(self, schema: ModelSchema) -> DenseCost:
        e, h, t = self.dim, self.hidden, self.sequence
        # The extractor GRU reads the E-wide behaviours, the AUGRU the H-wide interest states; the
        # attention h_t W e_ad computes W e_ad once, then one dot per step.
        extractor = 3 * h * (e + h)
        evolution = 3 * h * (h + h)
        rnn = DenseCost(
            parameters=extractor + evolution + 2 * 6 * h + h * e,
            mlp_macs=0,
            attention_macs=t * (extractor + evolution) + h * e + t * h,
        )
        return add(rnn, mlp_cost((h + 3 * e, *self.predictor)))


#: MLPerf DLRM-v2's tables (torchrec's Criteo 1TB preprocessing, 40M cap) and multi-hot sizes.
DLRM_V2_ROWS = (40000000, 39060, 17295, 7424, 20265, 3, 7122, 1543, 63, 40000000, 3067956, 405282, 10,
                2209, 11938, 155, 4, 976, 14, 40000000, 40000000, 40000000, 590152, 12973, 108, 36)
DLRM_V2_HOTNESS = (3, 2, 1, 2, 6, 1, 1, 1, 1, 7, 3, 8, 1, 6, 9, 5, 1, 1, 1, 12, 100, 27, 10, 3, 1, 1)


@dataclass(frozen=True, kw_only=True)
class DLRMv2Config(ModelConfig):
    """MLPerf's DLRM-DCNv2: a ``bottom`` MLP over 13 dense features, 26 multi-hot sum-pooled
    tables, a low-rank DCNv2 cross network over the 27 concatenated vectors, then the ``top`` MLP.

    Each Criteo id is expanded to its table's ``hotness`` ids by MLPerf's multi-hot table
    (``suite.datasets.multihot``), so the Criteo files stay one id per field.
    """

    rows: tuple[int, ...] = DLRM_V2_ROWS
    hotness: tuple[int, ...] = DLRM_V2_HOTNESS
    dim: int = 128
    bottom: tuple[int, ...] = (13, 512, 256, 128)
    cross_layers: int = 3
    low_rank: int = 512
    top: tuple[int, ...] = (1024, 1024, 512, 256, 1)

    def __post_init__(self) -> None:
        if len(self.rows) != len(self.hotness):
            raise ConfigError(f"{self.name}: 'rows' and 'hotness' must be equally long")

    def schema(self, row_cap: int | None) -> ModelSchema:
        return ModelSchema(
            model=self.name,
            dense=self.bottom[0],
            tables=tuple(
                TableSpec(name=f"t{i}", rows=cap(rows, row_cap), dim=self.dim, lookups=hot, multi_hot=True)
                for i, (rows, hot) in enumerate(zip(self.rows, self.hotness, strict=False))
            ),
        )

    @property
    def interaction_width(self) -> int:
        return (len(self.rows) + 1) * self.dim

    def dense_cost(self, schema: ModelSchema) -> DenseCost:
        w, r = self.interaction_width, self.low_rank
        cross = DenseCost(parameters=self.cross_layers * (2 * w * r + w), mlp_macs=self.cross_layers * 2 * w * r)
        return add(mlp_cost(self.bottom), cross, mlp_cost((w, *self.top)))


_DLRM = "suite.models.dlrm:DLRM"

RMC1 = DLRMConfig(name="dlrm-rmc1", module=_DLRM, bottom=(128, 64, 32), top=(256, 64, 1),
                  tables=8, rows=4_000_000, dim=32, lookups=80)
RMC2 = DLRMConfig(name="dlrm-rmc2", module=_DLRM, bottom=(256, 128, 64), top=(128, 64, 1),
                  tables=32, rows=500_000, dim=64, lookups=120)
RMC3 = DLRMConfig(name="dlrm-rmc3", module=_DLRM, bottom=(2560, 1024, 256, 32), top=(512, 256, 1),
                  tables=10, rows=2_000_000, dim=32, lookups=20)
NCF = NCFConfig(name="ncf", module="suite.models.ncf:NCF")
WND = WnDConfig(name="wnd", module="suite.models.wnd:WideAndDeep")
MTWND = MTWnDConfig(name="mtwnd", module="suite.models.wnd:MultiTaskWideAndDeep")
DIN = DINConfig(name="din", module="suite.models.din:DIN")
DIEN = DIENConfig(name="dien", module="suite.models.dien:DIEN")
DLRM_V2 = DLRMv2Config(name="dlrm-v2", module="suite.models.dlrm_v2:DLRMv2")


@dataclass(frozen=True, kw_only=True)
class DLRMv3Config(ModelConfig):
    """MLPerf's DLRM-v3: Meta's HSTU generative ranking model (DLRM-HSTU), one binary task.

    A sample is one request: a user's ``history`` of (item, category, rating, action) events with
    their ages, the user id as the one contextual token, and ``candidates`` items to score. The
    sequence [user, history..., candidates...] runs through ``layers`` HSTU (STU) layers of ``heads``
    heads with SiLU attention (causal over the history; a candidate sees the user and the whole
    history, and itself, never another candidate), and a head scores each candidate. So the model's
    outputs per sample are ``candidates`` scores: the schema's ``tasks``.

    Tables as MLPerf's ``configs.py``: item 1e9 x 512 (history and candidates share it), user 1e7,
    category 128; rating (17 quarter steps of 1-5) and action (5 action bits, 32 sets) are small.
    Requests are jagged: each has its own history length and candidate count, drawn from the
    reference's distributions (``datasets/streaming.py``), and is stored padded to the widest
    request the scale allows (``lengths``). Above the ``small`` scale (row caps over 100,000, and
    ``full``) requests are MLPerf's size: histories of about 6,750 events (up to ``history``) and
    ``candidates`` = 2,048 candidates, as the reference's inference requests. At ``small`` they are
    cut to ``short_history`` / ``short_candidates``, at ``tiny`` (row cap <= 1,000) to
    ``tiny_history`` / ``tiny_candidates`` (and there the candidate count varies too, 2 to 8, so
    the tests exercise jagged candidates) so a CPU runs them in seconds.
    """

    QUERY_SIZE: ClassVar[str] = "fixed:1"  # a LoadGen sample is one request, never several
    #: Requests in a generated dataset per named scale (a request costs what ~1,000 DLRM items do).
    REQUESTS: ClassVar[dict[str, int]] = {"tiny": 128, "small": 2048, "full": 16384}

    items: int = 1_000_000_000
    users: int = 10_000_000
    categories: int = 128
    ratings: int = 17
    actions: int = 32
    dim: int = 512
    layers: int = 5
    heads: int = 4
    qk_dim: int = 128
    linear_dim: int = 128
    hidden: int = 256
    #: MLPerf's request: the widest history stored (the reference's histories average about 6,750
    #: events and stay below 9,000; it truncates at 16,351) and its 2,048 inference candidates.
    history: int = 9216
    candidates: int = 2048
    short_history: int = 256
    short_candidates: int = 64
    tiny_history: int = 16
    tiny_candidates: int = 8
    time_buckets: int = 128

    #: Row caps up to these use the tiny and the short request shapes; above, MLPerf's.
    TINY_CAP: ClassVar[int] = 1_000
    SHORT_CAP: ClassVar[int] = 100_000

    def __post_init__(self) -> None:
        for name in ("layers", "heads", "qk_dim", "linear_dim", "history", "candidates", "short_history",
                     "short_candidates", "tiny_history", "tiny_candidates"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{self.name}: {name!r} must be >= 1 (got {getattr(self, name)!r})")

    def default_rows(self, scale: str) -> int:
        return self.REQUESTS.get(scale, self.REQUESTS["small"])

    def lengths(self, row_cap: int | None) -> tuple[int, int]:
        """(history events, candidates) of the widest request at ``row_cap``: what a stored request
        is padded to."""
        if row_cap is not None and row_cap <= self.TINY_CAP:
            return self.tiny_history, self.tiny_candidates
        if row_cap is not None and row_cap <= self.SHORT_CAP:
            return self.short_history, self.short_candidates
        return self.history, self.candidates

    def min_candidates(self, row_cap: int | None) -> int:
        """The fewest candidates a generated request holds: the reference's requests all hold
        2,048 (its ``num_inference_candidates``); the tiny shape draws 2 to ``tiny_candidates``."""
        tiny = row_cap is not None and row_cap <= self.TINY_CAP
        return 2 if tiny else self.lengths(row_cap)[1]

    def mlperf_size(self, row_cap: int | None) -> bool:
        """Whether requests at ``row_cap`` are MLPerf's size (what the official profile needs)."""
        return self.lengths(row_cap) == (self.history, self.candidates)

    def schema(self, row_cap: int | None) -> ModelSchema:
        h, k = self.lengths(row_cap)
        items, e = cap(self.items, row_cap), self.dim
        return ModelSchema(
            model=self.name,
            # Each history event's age in hours at the request's time, then 0.0 per candidate;
            # -1.0 marks a padding slot (no event, no candidate): requests are jagged.
            dense=h + k,
            tables=(
                TableSpec(name="user", rows=cap(self.users, row_cap), dim=e),
                TableSpec(name="items", rows=items, dim=e, lookups=h, pooled=False),
                TableSpec(name="categories", rows=self.categories, dim=e, lookups=h, pooled=False),
                TableSpec(name="ratings", rows=self.ratings, dim=e, lookups=h, pooled=False),
                TableSpec(name="actions", rows=self.actions, dim=e, lookups=h, pooled=False),
                TableSpec(name="candidates", rows=items, dim=e, lookups=k, pooled=False, shares="items"),
                TableSpec(name="candidate_categories", rows=self.categories, dim=e, lookups=k, pooled=False,
                          shares="categories"),
            ),
            tasks=k,
        )

    def tokens(self, row_cap: int | None) -> int:
        """Sequence length of the widest request: the user token, the history, the candidates."""
        h, k = self.lengths(row_cap)
        return 1 + h + k

    def dense_cost(self, schema: ModelSchema) -> DenseCost:
        e, hd, n = self.dim, self.heads, schema.dense + 1  # the widest request's tokens
        uvqk = e * (2 * self.linear_dim + 2 * self.qk_dim) * hd
        out = 3 * self.linear_dim * hd * e
        layer = DenseCost(parameters=uvqk + 2 * (self.linear_dim + self.qk_dim) * hd + out,
                          mlp_macs=n * (uvqk + out),
                          # q k^T and the weighted sum of v, every token against every token
                          attention_macs=hd * n * n * (self.qk_dim + self.linear_dim))
        content = mlp_cost((2 * e, self.hidden, e))  # item and category -> one token
        context = mlp_cost((e, self.hidden, e))
        head = mlp_cost((e, self.hidden, 1))
        history = schema.dense - schema.tasks
        tables = DenseCost(parameters=(history + 2 + self.time_buckets + 1) * e, mlp_macs=0)  # position, age
        return add(
            *[layer] * self.layers,
            DenseCost(parameters=content.parameters, mlp_macs=(n - 1) * content.mlp_macs),
            context,
            DenseCost(parameters=head.parameters, mlp_macs=schema.tasks * head.mlp_macs),
            tables,
        )

    def request_macs(self, history: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        """Multiply-adds of each request of these ``history`` and ``candidates`` counts, as the
        forward computes them: each layer's projections of every token and its attention over the
        (row, column) pairs the mask keeps (causal history, the user row's view, each candidate
        against the history and itself), but the last layer's for the candidate rows alone (their
        queries, gates, attention and output; every token's keys and values), the content MLP of
        every history event and candidate and the head of every candidate. Requests are jagged, so
        a batch's time says how fast a size runs only against what its requests hold: torch-cuda
        compares sizes by this. A request of MLPerf's mean size (6,750 events, 2,048 candidates):
        about 0.24 TMAC, two thirds of it the attention, which is quadratic in the history."""
        h, c = history.astype(float), candidates.astype(float)
        tokens = 1 + h + c
        hd, e, qk, lin = self.heads, self.dim, self.qk_dim, self.linear_dim
        uv_qk, out = e * (lin + qk) * hd, 3 * lin * hd * e  # (u, q) or (v, k) for one row; the output
        pairs = attention_pairs(h, c)
        full = tokens * (2 * uv_qk + out) + hd * pairs * (qk + lin)
        last = tokens * uv_qk + c * (uv_qk + out) + hd * c * (h + 2) * (qk + lin)
        content = mlp_cost((2 * e, self.hidden, e)).mlp_macs * (h + c)
        head = mlp_cost((e, self.hidden, 1)).mlp_macs * c
        return (self.layers - 1) * full + last + content + head


def attention_pairs(history: Any, candidates: Any) -> Any:
    """The (row, column) pairs dlrm-v3's attention mask keeps in a request of these counts (float
    arrays or tensors, elementwise): the causal history with the user row's view of all of it, and
    each candidate against the user, the history and itself."""
    return (history + 1) * (history + 2) / 2 + history + candidates * (history + 2)


DLRM_V3 = DLRMv3Config(name="dlrm-v3", module="suite.models.dlrm_v3:DLRMv3")


#: Every model the suite knows, in the order ``suite models`` lists them: a new model's config is
#: added here, beside its definition (``suite.models.MODELS`` is built from this).
ALL: tuple[ModelConfig, ...] = (RMC1, RMC2, RMC3, NCF, WND, MTWND, DIN, DIEN, DLRM_V2, DLRM_V3)
