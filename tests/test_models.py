"""The model zoo: every registered model builds, scores, is seeded, costs what its config says, runs
through LoadGen to its reference accuracy, and fails the gate when an embedding lookup is off by one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import smoke_config

from suite.backends.base import BackendConfig
from suite.backends.torch_cpu import TorchCPUBackend
from suite.config import Mode, Scenario
from suite.datasets import multihot, synthetic
from suite.datasets.batch import Batch
from suite.errors import ConfigError, DatasetError
from suite.models import MODELS, ModelSpec, build, parse_scale
from suite.runner import run

NAMES = list(MODELS)
#: Items per generated test dataset: enough queries for a stable AUC, small enough for 2 cores.
ROWS = 3072
#: dlrm-v3's sample is a whole request of 21 tokens through five 512-wide layers: 128 are enough.
ROWS_BY_MODEL = {"dlrm-v3": 128}
CPU_QPS = {Scenario.OFFLINE: 3_000.0, Scenario.SERVER: 100.0}


def random_batch(spec: ModelSpec, n: int, seed: int = 1) -> Batch:
    rng = np.random.default_rng(seed)
    schema = spec.schema
    dense = np.log1p(rng.integers(0, 100, (n, schema.dense))).astype(np.float32)
    sparse = tuple(rng.integers(0, t.rows, (n, t.lookups)).astype(np.int32) for t in schema.tables)
    return Batch(dense=dense, sparse=sparse)


def logits(model: torch.nn.Module, batch: Batch) -> np.ndarray:
    with torch.inference_mode():
        return model(torch.from_numpy(batch.dense), [torch.from_numpy(s) for s in batch.sparse]).numpy()


@pytest.mark.parametrize("name", NAMES)
def test_scores_have_one_probability_per_item_and_task(name: str) -> None:
    spec = ModelSpec(name=name, scale="tiny")
    backend = TorchCPUBackend(BackendConfig(model=spec, threads=1))
    backend.load()
    scores = backend.predict(random_batch(spec, 37))
    tasks = spec.schema.tasks
    assert scores.dtype == np.float32
    assert scores.shape == ((37,) if tasks == 1 else (37, tasks))
    assert np.all((scores >= 0) & (scores <= 1)) and np.isfinite(scores).all()
    assert scores.std() > 0.01


@pytest.mark.parametrize("name", NAMES)
def test_a_seed_fixes_every_weight(name: str) -> None:
    a, b = build(ModelSpec(name=name, scale="tiny")), build(ModelSpec(name=name, scale="tiny"))
    other = build(ModelSpec(name=name, scale="tiny", seed=1))
    for (key, x), y, _z in zip(a.state_dict().items(), b.state_dict().values(), other.state_dict().values(), strict=False):
        assert torch.equal(x, y), key
    assert not all(torch.equal(x, z) for x, z in zip(a.state_dict().values(), other.state_dict().values(), strict=False))
    batch = random_batch(ModelSpec(name=name, scale="tiny"), 16)
    assert np.array_equal(logits(a, batch), logits(b, batch))


@pytest.mark.parametrize("name", NAMES)
def test_parameter_count_is_the_config_arithmetic(name: str) -> None:
    spec = ModelSpec(name=name, scale="tiny")
    model = build(spec)
    assert sum(p.numel() for p in model.parameters()) == spec.config.size(parse_scale("tiny")).parameters


@pytest.mark.parametrize(
    ("name", "parameters", "kb", "mflop", "dominated"),
    [
        # Full scale. RMC1/2/3 bytes and FLOPs are deeprecsys.md 1c's (82 KB 0.20, 983 KB 0.64, 26 KB 6.4).
        ("dlrm-rmc1", 8 * 4_000_000 * 32 + 100_833, 81.92, 0.200832, "embedding"),
        ("dlrm-rmc2", 32 * 500_000 * 64 + 319_937, 983.04, 0.639104, "embedding"),
        ("dlrm-rmc3", 10 * 2_000_000 * 32 + 3_205_409, 25.6, 6.406656, "MLP"),
        ("ncf", 2 * 140_000 * 64 + 2 * 28_000 * 64 + 148_289, 1.024, 0.29504, "MLP"),
        ("wnd", 27 * 1_000_000 * 32 + 2_066_433, 3.456, 4.12928, "MLP"),
        ("mtwnd", (41 * 500_000 + 2 * 5_000_000) * 32 + 2_459_136 + 3 * 164_353, 5.504, 5.899008, "MLP"),
        ("din", 21_000_000 * 32 + 45_571, 97.536, 1.836504, "attention+embedding"),
        ("dien", 10_500_000 * 32 + 94_266, 5.504, 3.546176, "attention"),
        ("dlrm-v2", 204_184_588 * 128 + 16_044_545, 109.568, 32.060928, "MLP"),
    ],
)
def test_size_at_full_scale(name: str, parameters: int, kb: float, mflop: float, dominated: str) -> None:
    size = MODELS[name].size(None)
    assert size.parameters == parameters
    assert size.embedding_bytes_per_item == round(kb * 1000)
    assert size.dense_flops_per_item == round(mflop * 1e6)
    assert size.dominated_by == dominated


@pytest.mark.parametrize("scenario", [Scenario.OFFLINE, Scenario.SERVER])
@pytest.mark.parametrize("name", NAMES)
def test_smoke_run_reaches_the_reference_auc(results: Path, data_dir: Path, name: str, scenario: Scenario) -> None:
    config = smoke_config(results, model=ModelSpec(name=name, scale="tiny"), backend="torch-cpu", scenario=scenario,
                          mode=Mode.ACCURACY, rows=ROWS_BY_MODEL.get(name, ROWS), target_qps=CPU_QPS[scenario])
    result = run(config)
    acc = result.data["accuracy"]
    assert result.valid and acc["passed"]
    # A request model's candidates are one pool: one AUC, not one per candidate slot.
    pools = 1 if getattr(config.model.config, "QUERY_SIZE", None) else config.model.schema.tasks
    assert len(acc["task_auc"]) == len(acc["reference_auc"]) == pools
    assert acc["auc"] >= 0.99 * float(np.mean(acc["reference_auc"]))
    # The gate's reference is MLPerf's fixed 80.31% for dlrm-v2; the data's own is its teacher's AUC.
    # Under mlperf-v6.0 (dlrm-v3) the AUC reported is the group AUC, gated against the teacher's own.
    teacher = acc["reference_auc"] if acc.get("rules") == "mlperf-v6.0" else result.data["dataset"]["reference_auc"]
    assert all(ref == pytest.approx(0.80, abs=0.03) for ref in result.data["dataset"]["reference_auc"])
    # A group AUC over ~90 small requests moves by ~1e-3 when fp32 breaks one of the teacher's exact
    # float64 ties (a request holding the same candidate twice, common at the tiny item cap).
    tolerance = 3e-3 if acc.get("rules") == "mlperf-v6.0" else 1e-4
    for got, ref in zip(acc["task_auc"], teacher, strict=False):
        assert got == pytest.approx(ref, abs=tolerance)
    assert result.data["config"]["model"]["tasks"] == config.model.task_count


class OffByOneBackend(TorchCPUBackend):
    """torch-cpu with an id bug: every lookup in ``tables`` (None: all) reads the next row."""

    tables: tuple[int, ...] | None = None

    def load(self) -> None:
        super().load()
        bags = [m for m in self._model.modules() if isinstance(m, (torch.nn.EmbeddingBag, torch.nn.Embedding))]
        with torch.no_grad():
            for i, bag in enumerate(bags):
                if self.tables is None or i in self.tables:
                    bag.weight.copy_(torch.roll(bag.weight, -1, dims=0))


def _corrupted_run(results: Path, name: str, tables: tuple[int, ...] | None) -> dict[str, float]:
    config = smoke_config(results, model=ModelSpec(name=name, scale="tiny"), backend="torch-cpu",
                          mode=Mode.ACCURACY, rows=ROWS_BY_MODEL.get(name, ROWS), target_qps=CPU_QPS[Scenario.OFFLINE])
    backend = OffByOneBackend(BackendConfig(model=config.model))
    backend.tables = tables
    result = run(config, backend=backend)
    assert not result.valid
    return result.data["accuracy"]


@pytest.mark.parametrize("name", NAMES)
def test_off_by_one_ids_fail_the_gate(results: Path, data_dir: Path, name: str) -> None:
    acc = _corrupted_run(results, name, None)
    assert not acc["passed"]
    assert acc["auc"] < acc["threshold"] < acc["reference_auc"][0]


@pytest.mark.parametrize(("name", "table"), [("dlrm-rmc1", 0), ("ncf", 1), ("din", 1), ("dien", 1), ("dlrm-v2", 20)])
def test_one_table_shifted_by_one_row_fails_the_gate(results: Path, data_dir: Path, name: str, table: int) -> None:
    acc = _corrupted_run(results, name, (table,))
    assert not acc["passed"] and acc["auc"] < acc["threshold"]


def _behaviour_permuted(spec: ModelSpec, batch: Batch) -> Batch:
    schema = spec.schema
    t = schema.index("behaviours")
    step = schema.tables[t].step
    ids = batch.sparse[t]
    steps = ids.reshape(len(batch), -1, step)
    order = np.random.default_rng(0).permutation(steps.shape[1])
    sparse = list(batch.sparse)
    sparse[t] = np.ascontiguousarray(steps[:, order].reshape(len(batch), -1))
    return Batch(dense=batch.dense, sparse=tuple(sparse))


def test_din_ignores_the_order_of_behaviours_and_dien_does_not() -> None:
    din, dien = ModelSpec(name="din", scale="tiny"), ModelSpec(name="dien", scale="tiny")
    batch = random_batch(din, 64)
    a, b = logits(build(din), batch), logits(build(din), _behaviour_permuted(din, batch))
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * float(np.abs(a).max()))
    batch = random_batch(dien, 64)
    a, b = logits(build(dien), batch), logits(build(dien), _behaviour_permuted(dien, batch))
    assert np.median(np.abs(a - b)) > 1e-2 * float(a.std())


def test_tasks_flow_into_weights_data_and_result(results: Path, data_dir: Path) -> None:
    two = ModelSpec(name="mtwnd", scale="tiny", tasks=2)
    assert ModelSpec(name="mtwnd", scale="tiny").schema.tasks == 3
    assert two.schema.tasks == 2 and two.key() == "mtwnd-tiny-s0-t2"
    assert logits(build(two), random_batch(two, 5)).shape == (5, 2)
    config = smoke_config(results, model=two, backend="torch-cpu", mode=Mode.ACCURACY, rows=ROWS,
                          target_qps=CPU_QPS[Scenario.OFFLINE])
    result = run(config)
    assert result.data["config"]["model"]["tasks"] == 2
    assert len(result.data["accuracy"]["task_auc"]) == 2 and result.valid
    assert "task_AUC=" in (result.path / "accuracy.txt").read_text()
    with pytest.raises(ConfigError, match=r"^'tasks' applies only to the multi-task models \['mtwnd'\] \(got 2 for 'ncf'\)$"):
        ModelSpec(name="ncf", tasks=2)
    with pytest.raises(ConfigError, match=r"^'tasks' must be >= 1 \(got 0\)$"):
        ModelSpec(name="mtwnd", tasks=0)


def test_dataset_with_other_task_count_is_refused(results: Path, data_dir: Path) -> None:
    path = synthetic.ensure(ModelSpec(name="mtwnd", scale="tiny", tasks=2), 600)
    config = smoke_config(results, model=ModelSpec(name="mtwnd", scale="tiny"), backend="null", dataset=path)
    with pytest.raises(DatasetError, match="holds 2 task label"):
        run(config)


def test_multi_hot_expansion_is_mlperfs() -> None:
    schema = ModelSpec(name="dlrm-v2", scale="tiny").schema
    tables = multihot.tables(schema)
    rng = np.random.RandomState(0)
    for table, spec in zip(tables, schema.tables, strict=False):
        assert table is not None and table.shape == (spec.rows, spec.lookups)
        assert np.array_equal(table[:, 0], np.arange(spec.rows))
        assert np.array_equal(table[:, 1:], rng.randint(0, spec.rows, size=(spec.rows, spec.lookups - 1)))
    assert sum(t.lookups for t in schema.tables) == 214


def test_behaviours_come_from_a_few_interests() -> None:
    spec = ModelSpec(name="din", scale="small")
    data = synthetic.generate(spec, 512)
    behaviours, ad = data.items.sparse[1], data.items.sparse[2]
    # Three clusters of 16 rows each: a user's 753 behaviour ids hit at most 48 distinct rows.
    assert max(len(np.unique(row)) for row in behaviours) <= 48
    # Half the candidate ads come from the user's own interests: an ad shares rows with its own
    # user's behaviours far more often than with another user's (popular clusters overlap anyway).
    own = np.mean([len(np.intersect1d(a, b)) > 0 for a, b in zip(ad, behaviours, strict=False)])
    other = np.mean([len(np.intersect1d(a, b)) > 0 for a, b in zip(ad, np.roll(behaviours, 1, axis=0), strict=False)])
    assert own > other + 0.5


def test_ncf_reads_one_user_and_one_item_id() -> None:
    data = synthetic.generate(ModelSpec(name="ncf", scale="small"), 256)
    user_mf, item_mf, user_mlp, item_mlp = data.raw.cats
    assert np.array_equal(user_mf, user_mlp) and np.array_equal(item_mf, item_mlp)
    assert not np.array_equal(user_mf, item_mf)
    assert np.array_equal(data.items.sparse[2], (user_mf % np.uint64(28_000)).astype(np.int32))
