"""Run configuration: frozen dataclasses with units in their names.

``__post_init__`` only validates; variants come from ``dataclasses.replace``. :func:`resolve`
combines a :class:`RunConfig` with its rule table into the :class:`Settings` the harness runs.
"""

from __future__ import annotations

import dataclasses
import enum
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from suite import inputs
from suite.errors import ConfigError, one_of
from suite.models import ModelSpec
from suite.rules import RuleSet, for_model


class Scenario(enum.StrEnum):
    """LoadGen's scenarios, valued by LoadGen's own names."""

    OFFLINE = "Offline"
    SERVER = "Server"
    SINGLE_STREAM = "SingleStream"
    MULTI_STREAM = "MultiStream"

    @classmethod
    def parse(cls, text: str) -> Scenario:
        """From the CLI spelling (``offline``, ``server``, ``singlestream``, ``multistream``)."""
        by_cli = {s.value.lower(): s for s in cls}
        one_of("scenario", text, by_cli)
        return by_cli[text]


class Mode(enum.StrEnum):
    PERFORMANCE = "performance"
    ACCURACY = "accuracy"


PROFILES = ("smoke", "short", "official")
#: ``--cluster-mode``: how a Ray-placed run feeds its workers (``batched``: the driver's batcher,
#: row spans of items every worker holds; ``network``: MLPerf's Network division, one query with its
#: rows per request, unbatched, through LoadGen's query dispatch library).
CLUSTER_MODES = ("batched", "network")
#: ``--target-qps auto``: the target comes from an untimed probe of the backend before LoadGen starts.
AUTO = "auto"
#: Compliance audits ``suite audit`` runs (MLPerf's compliance/TEST0x).
AUDITS = ("TEST01", "TEST04", "TEST05", "TEST08")


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    """Everything ``suite run`` was asked to do.

    Attributes:
        model: the model's weights (architecture, scale, seed).
        backend: a name from ``suite.backends.REGISTRY``.
        scenario, mode, profile: what LoadGen runs and under which durations.
        target_qps: Server target or Offline expected QPS, or ``"auto"`` (calibrated by an untimed
            probe); None: auto for Offline, and for Server unless the rule table pins a number
            for this model (see :func:`rule_settings`).
        query_size: a ``--query-size`` spec; None takes the rule table's.
        rows: items in the generated dataset; None takes the scale's default.
        dataset: a dataset folder (from ``suite data import``) instead of generated data.
        output: root of the results tree; the run lands in ``output/system/model/Scenario/...``.
        system: the system name; defaults to ``<hostname>-<backend>``.
        user_conf: a LoadGen ``user.conf`` whose settings override the rule table's.
        threads: backend intra-op threads (0: one per core).
        precision: backend arithmetic.
        max_batch_items, batch_timeout_us: the batcher (None: the rule table's).
        workers: harness threads that call the backend concurrently (None: the backend's default).
        backend_options: backend-specific (key, value) pairs.
        rules: rule set name; None picks the one that lists the model.
        variant: the rule set's named target (``99``/``99.9`` under mlperf-v5.1, ``low``/``medium``/
            ``high`` SLA under deeprecsys); None takes the rule set's default.
        audit: a compliance audit (``TEST01``...) this run performs; its folder is then
            ``.../<Scenario>/<audit>/performance/run_1``.
        data_dir: dataset cache root; None uses ``$RECSUITE_DATA_DIR`` or ``~/.cache/recsuite``.
        overwrite: replace an existing run folder.
        progress: print a live progress line on stderr.
        power: sample GPU board power (NVML) and CPU package energy (RAPL) over LoadGen's timed
            window and write ``power.json`` beside the logs.
        reference_auc: the AUC the accuracy gate is a fraction of (``--reference-auc``), for data
            without a recorded one; None takes the dataset's, and without one the run is not gated.
        devices: ``--devices`` (``all``, a count, or GPU indices ``0,2``): one worker process per
            GPU, each running the backend on its own ``cuda:K`` (torch-cuda); None: today's threads.
        processes: ``--processes N``: N local worker processes for a CPU backend, each on its own
            share of the cores; None: threads of this process.
        cluster: ``--cluster``: ``ray`` (``RAY_ADDRESS``, else the cluster ``ray start`` started on
            this host) or ``ray://HOST:PORT``: one Ray actor per GPU (or per node, for a CPU
            backend) of that cluster (``suite.placement.ray``); None: this host only.
        cluster_mode: ``--cluster-mode``: ``batched`` (the driver batches queries and sends row
            spans of items every worker holds) or ``network`` (MLPerf's Network division: LoadGen
            talks to a query dispatch library that sends every query, with its rows, to a worker
            unbatched; the workers hold no items); see :data:`CLUSTER_MODES`.
    """

    model: ModelSpec
    backend: str
    scenario: Scenario
    mode: Mode = Mode.PERFORMANCE
    profile: str = "short"
    target_qps: float | str | None = None
    query_size: str | None = None
    rows: int | None = None
    dataset: Path | None = None
    output: Path = Path("results")
    system: str | None = None
    user_conf: Path | None = None
    threads: int = 0
    precision: str = "fp32"
    max_batch_items: int | None = None
    batch_timeout_us: int | None = None
    workers: int | None = None
    backend_options: tuple[tuple[str, str], ...] = ()
    rules: str | None = None
    variant: str | None = None
    audit: str | None = None
    data_dir: Path | None = None
    overwrite: bool = False
    progress: bool = True
    power: bool = False
    reference_auc: float | None = None
    devices: str | None = None
    processes: int | None = None
    cluster: str | None = None
    cluster_mode: str = "batched"

    def __post_init__(self) -> None:
        one_of("profile", self.profile, PROFILES)
        self._check_placement()
        # dlrm-v3: the official profile is MLPerf's benchmark, whose requests are MLPerf's size.
        mlperf_size = getattr(self.model.config, "mlperf_size", None)
        if self.profile == "official" and self.dataset is None and mlperf_size is not None:
            from suite.models.base import parse_scale

            if not mlperf_size(parse_scale(self.model.scale)):
                raise ConfigError(
                    f"the official profile runs {self.model.name} with MLPerf-size requests: 'scale' must be "
                    f"'full' or a row cap above 100000 (got {self.model.scale!r})"
                )
        if self.reference_auc is not None and not 0.5 < self.reference_auc <= 1.0:
            raise ConfigError(f"'reference-auc' must be an AUC in (0.5, 1] as a fraction, e.g. 0.8031 (got {self.reference_auc!r})")
        if self.audit is not None:
            one_of("audit", self.audit, AUDITS)
            if self.mode is not Mode.PERFORMANCE:
                raise ConfigError(f"'audit' runs are performance runs (got mode {self.mode.value!r})")
        # The CLI's types check these already; a config built in code gets the same bounds.
        if isinstance(self.target_qps, str):
            if self.target_qps != AUTO:
                raise ConfigError(f"'target-qps' must be a number > 0 or {AUTO!r} (got {self.target_qps!r})")
        elif self.target_qps is not None:
            inputs.parse_float("target-qps", self.target_qps, 0, inputs.MAX_TARGET_QPS, lo_open=True)
        if self.rows is not None:
            inputs.parse_int("rows", self.rows, 1, inputs.MAX_ROWS)
        inputs.parse_int("threads", self.threads, 0, inputs.MAX_THREADS)
        if self.max_batch_items is not None:
            inputs.parse_int("max-batch-items", self.max_batch_items, 1, inputs.MAX_BATCH_ITEMS)
        if self.batch_timeout_us is not None:
            inputs.parse_int("batch-timeout-us", self.batch_timeout_us, 0, inputs.MAX_BATCH_TIMEOUT_US)
        if self.workers is not None:
            inputs.parse_int("workers", self.workers, 1, inputs.MAX_WORKERS)
        if self.system is not None and not _safe_name(self.system):
            raise ConfigError(f"'system' must be letters, digits, '.', '_' or '-' (got {self.system!r})")
        if self.user_conf is not None and not self.user_conf.is_file():
            raise ConfigError(f"'user-conf' file {str(self.user_conf)!r} does not exist")

    def _check_placement(self) -> None:
        """``--devices``, ``--processes`` and ``--cluster``: well formed and one of them. Whether
        the backend fits them is its capability (``device_kind``), checked by
        ``suite.placement.backend.check_fits`` when the runner has the backend's class; the
        placement ``--cluster`` names, and its address, by ``suite.placement.chosen`` then."""
        one_of("cluster-mode", self.cluster_mode, CLUSTER_MODES)
        if self.cluster_mode == "network" and self.cluster is None:
            raise ConfigError("'cluster-mode' network needs --cluster (the Network division's SUT runs on other nodes than LoadGen)")
        if self.cluster is not None:
            for other in ("devices", "processes"):
                if getattr(self, other) is not None:
                    raise ConfigError(f"'cluster' and '{other}' cannot be combined (--cluster places one worker per GPU or node of the cluster)")
        if self.devices is not None:
            inputs.parse_devices_text(self.devices)
            if self.processes is not None:
                raise ConfigError("'devices' and 'processes' cannot be combined (--devices already runs one process per GPU)")
        if self.processes is not None:
            inputs.parse_int("processes", self.processes, 1, inputs.MAX_WORKERS)

    @property
    def system_name(self) -> str:
        return self.system or f"{socket.gethostname().split('.')[0]}-{self.backend}"

    @property
    def rule_set(self) -> str:
        return self.rules or for_model(self.model.name)

    @property
    def dataset_rows(self) -> int:
        return self.rows or self.model.config.default_rows(self.model.scale)

    def run_dir(self) -> Path:
        """``output/system/model/Scenario/performance/run_1`` or ``.../accuracy``.

        An audit run lands in ``output/system/model/Scenario/<audit>/performance/run_1``: the
        layout of MLPerf's ``compliance/<system>/<benchmark>/<Scenario>/<audit>/``.
        """
        base = self.scenario_dir()
        if self.audit is not None:
            return base / self.audit / "performance/run_1"
        return base / ("performance/run_1" if self.mode is Mode.PERFORMANCE else "accuracy")

    def scenario_dir(self) -> Path:
        """``output/system/model/Scenario``: the folder of a scenario's runs and audits."""
        return self.output / self.system_name / self.model.name / self.scenario.value

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, ModelSpec):
                value = value.to_dict()
            elif isinstance(value, Path):
                value = str(value)
            elif isinstance(value, enum.Enum):
                value = value.value
            elif isinstance(value, tuple):
                value = [list(v) for v in value]
            out[f.name] = value
        out["system"] = self.system_name
        out["rules"] = self.rule_set
        out["rows"] = self.dataset_rows
        return out


def _safe_name(name: str) -> bool:
    return bool(name) and all(c.isalnum() or c in "._-" for c in name)


@dataclass(frozen=True, kw_only=True)
class Settings:
    """The resolved settings of one run, from the rule table, the profile and the CLI.

    ``user.conf`` is applied on top of these by LoadGen itself (see ``suite.harness``).
    """

    rules: str
    #: The rule set's variant (``99``, ``99.9``, ``low``, ``medium``, ``high``) and the benchmark
    #: name it makes (``dlrm-v2-99.9`` under mlperf-v5.1; the model under deeprecsys).
    variant: str | None
    benchmark: str
    profile: str
    loadgen_model: str
    scenario: Scenario
    mode: Mode
    target_qps: float
    target_latency_ns: int
    target_latency_percentile: float
    min_duration_ms: int
    min_query_count: int
    performance_sample_count: int
    samples_per_query: int
    query_size: str
    max_batch_items: int
    batch_timeout_us: int
    accuracy_target: float
    #: A fixed reference AUC (percent) the gate is ``accuracy_target`` of: MLPerf's 80.31 for
    #: dlrm-v2. 0: the dataset's recorded reference (generated data: its teacher model's AUC).
    reference_auc_percent: float = 0.0
    #: LoadGen samples (queries) an accuracy run must cover, and the floor that makes
    #: ``performance_sample_count`` a minimum rather than min(rule, dataset): MLPerf's dataset-size
    #: (330067 for dlrm-v2). 0: the dataset's own size.
    dataset_size: int = 0
    seeds: tuple[int, int, int] | None = None
    #: Where ``target_qps`` came from: ``cli``, ``rules`` or ``auto``. Until the runner's probe
    #: replaces it, an ``auto`` target holds the rule table's number.
    target_qps_source: str = "rules"
    #: Batches the harness lets the backend hold at once (0: one per worker); a backend declares it
    #: (``BatchDefaults.batches_in_flight``).
    batches_in_flight: int = 0
    #: A compliance audit (``TEST01``...) this run performs, or None.
    audit: str | None = None
    #: The run length is judged by LoadGen's early stopping, not ``min_query_count`` (MLPerf's
    #: Server, SingleStream and MultiStream); ``min_query_count`` is still what LoadGen runs.
    early_stopping: bool = False
    #: Server: when LoadGen's issue thread runs late, it hands every query already due to one
    #: issue call (``server_coalesce_queries``, as NVIDIA's harnesses set it); each query's latency
    #: still counts from its own scheduled time. A user.conf's ``coalesce_queries`` overrides it.
    coalesce_queries: bool = True

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["scenario"] = self.scenario.value
        out["mode"] = self.mode.value
        return out


def resolve(config: RunConfig) -> Settings:
    """The :class:`Settings` for ``config`` under its rule set, variant and profile."""
    return rule_settings(
        RuleSet.load(config.rule_set),
        config.model.name,
        config.scenario,
        config.mode,
        profile=config.profile,
        variant=config.variant,
        target_qps=config.target_qps,
        query_size=config.query_size,
        max_batch_items=config.max_batch_items,
        batch_timeout_us=config.batch_timeout_us,
        audit=config.audit,
    )


def rule_settings(
    rules: RuleSet,
    model: str,
    scenario: Scenario,
    mode: Mode,
    *,
    profile: str,
    variant: str | None = None,
    target_qps: float | str | None = None,
    query_size: str | None = None,
    max_batch_items: int | None = None,
    batch_timeout_us: int | None = None,
    audit: str | None = None,
) -> Settings:
    """The :class:`Settings` a rule table gives ``model`` in ``scenario``: what the harness runs
    and what ``suite check`` expects to find in LoadGen's ``effective_*`` keys.

    Without ``target_qps``, Offline's expected QPS is always ``auto`` (it only sizes the run:
    LoadGen issues expected QPS x min duration x 1.1 samples, so a constant makes a slow machine
    run for many minutes and a fast one miss the minimum duration); Server's target is the rule
    table's when the table names this model for it (``model.Server`` or ``model.*``), else ``auto``.
    """
    rules.check_profile(profile)
    variant = rules.variant(variant)
    scen, prof = scenario.value, profile

    def get(key: str, default: Any = None) -> Any:
        return rules.get(model, scen, key, prof, default, variant=variant)

    seeds = get("qsl_rng_seed")
    table_qps = float(get("target_qps", 1.0))
    if target_qps == AUTO:
        source = AUTO
    elif target_qps is not None:
        source = "cli"
    elif scenario is Scenario.OFFLINE or (
        scenario is Scenario.SERVER and rules.get_for_model(model, scen, "target_qps", prof, variant=variant) is None
    ):
        source = AUTO
    else:
        source = "rules"
    if source == AUTO and (scenario not in (Scenario.OFFLINE, Scenario.SERVER) or (
        scenario is Scenario.OFFLINE and mode is Mode.ACCURACY
    )):
        source = "rules"  # unused: SingleStream and MultiStream have none; Offline accuracy issues every query once
    return Settings(
        rules=rules.name,
        variant=variant,
        benchmark=rules.benchmark(model, variant),
        profile=profile,
        audit=audit,
        loadgen_model=rules.loadgen_model(model),
        scenario=scenario,
        mode=mode,
        target_qps=float(target_qps) if source == "cli" and not isinstance(target_qps, str) and target_qps is not None else table_qps,
        target_qps_source=source,
        target_latency_ns=int(float(get("target_latency_ms", 100)) * 1_000_000),
        target_latency_percentile=float(get("target_latency_percentile", 99)) / 100.0,
        min_duration_ms=int(get("min_duration_ms", 600_000)),
        min_query_count=int(get("min_query_count", 100)),
        performance_sample_count=int(get("performance_sample_count", 0)),
        samples_per_query=int(get("samples_per_query", 8)),
        query_size=query_size or _model_query_size(model) or str(get("query_size", "mlperf")),
        max_batch_items=int(max_batch_items or get("max_batch_items", 2048)),
        batch_timeout_us=int(batch_timeout_us if batch_timeout_us is not None else get("batch_timeout_us", 0)),
        accuracy_target=float(get("accuracy_target", 0.99)),
        dataset_size=int(get("dataset_size", 0)),
        early_stopping=scen in rules.early_stopping,
        reference_auc_percent=float(get("reference_auc_percent", 0.0)),
        seeds=None
        if seeds is None
        else (int(seeds), int(get("sample_index_rng_seed")), int(get("schedule_rng_seed"))),
    )


def _model_query_size(model: str) -> str | None:
    """The query size a model fixes whatever the rule table says (dlrm-v3: one request a sample)."""
    from suite.models import MODELS

    config = MODELS.get(model)
    return getattr(config, "QUERY_SIZE", None) if config is not None else None
