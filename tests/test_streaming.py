"""dlrm-v3's streaming requests: time order, histories before the request, ids in range, the
reference's distributions, teacher labels with signal, and the model's masks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from suite.cli import cli
from suite.config import Mode, RunConfig, Scenario
from suite.datasets import streaming, synthetic
from suite.models import ModelSpec
from suite.models.configs import DLRMv3Config

SPEC = ModelSpec(name="dlrm-v3", scale="tiny")


def draw(n: int = 200, seed: int = 0):  # type: ignore[no-untyped-def]
    config = SPEC.config
    assert isinstance(config, DLRMv3Config)
    return streaming.features(config, SPEC, n, np.random.default_rng(seed))


def test_requests_are_in_time_order_with_histories_strictly_before_them() -> None:
    batch = draw()
    ages = batch.dense
    assert ages.shape == (200, SPEC.schema.dense) and ages.dtype == np.float32
    assert (ages > 0).all()  # every history event happened before its request
    # history oldest first: ages fall along the row
    assert (np.diff(ages, axis=1) <= 0).all()
    assert ages.max() <= streaming.TIMESTAMPS * streaming.PERIOD_S / 3600  # hours


def test_ids_lie_in_their_tables_and_follow_the_reference_structure() -> None:
    batch = draw()
    schema = SPEC.schema
    for ids, table in zip(batch.sparse, schema.tables):
        assert ids.dtype == np.int32 and ids.shape == (200, table.lookups)
        assert ids.min() >= 0 and ids.max() < table.rows, table.name
    items, cats = batch.sparse[1], batch.sparse[2]
    per = schema.table("items").rows // schema.table("categories").rows
    assert (items // per == cats).all()  # each category owns its block of the item table
    ratings, actions = batch.sparse[3], batch.sparse[4]
    assert (actions & 1).all()  # 'viewed' is always set
    # higher ratings carry more action bits
    bits = np.vectorize(lambda a: bin(int(a)).count("1"))(actions)
    assert bits[ratings >= 12].mean() > bits[ratings <= 6].mean()


def test_users_with_a_small_concentration_keep_to_few_categories() -> None:
    batch = draw(400)
    distinct = np.array([len(np.unique(row)) for row in batch.sparse[2]])
    # Dirichlet(alpha / 128) preferences, alpha in [1, 500]: a user of small alpha keeps to a few
    # categories (uniform draws would give 16 events about 15 distinct categories every time).
    assert (distinct <= 10).mean() > 0.02


def test_same_seed_same_bytes() -> None:
    a, b = draw(seed=3), draw(seed=3)
    assert np.array_equal(a.dense, b.dense)
    assert all(np.array_equal(x, y) for x, y in zip(a.sparse, b.sparse))


def test_teacher_labels_carry_signal() -> None:
    items, labels, meta = synthetic.generate_requests(SPEC, 64)
    assert labels.shape == (64, SPEC.schema.tasks)
    assert meta["reference_auc"][0] == pytest.approx(0.80, abs=0.03)
    assert 0.15 < meta["click_rate"][0] < 0.4
    assert meta["candidates_per_request"] == SPEC.schema.tasks


def test_a_sample_is_one_request() -> None:
    config = RunConfig(model=SPEC, backend="null", scenario=Scenario.OFFLINE, mode=Mode.PERFORMANCE)
    from suite.config import rule_settings
    from suite.rules import RuleSet, for_model

    rules = RuleSet.load(for_model("dlrm-v3"))
    settings = rule_settings(rules, "dlrm-v3", Scenario.OFFLINE, Mode.PERFORMANCE, profile="smoke")
    assert settings.query_size == "fixed:1"
    assert config.dataset_rows == 128


def test_attention_mask_is_the_references() -> None:
    from suite.models.dlrm_v3 import attention_mask

    h, k = 3, 2
    m = attention_mask(h, k)
    want = np.array([
        # user, h1, h2, h3, c1, c2
        [1, 1, 1, 1, 0, 0],  # the user token sees the whole history
        [1, 1, 0, 0, 0, 0],  # history: causal
        [1, 1, 1, 0, 0, 0],
        [1, 1, 1, 1, 0, 0],
        [1, 1, 1, 1, 1, 0],  # a candidate: user, history, itself
        [1, 1, 1, 1, 0, 1],
    ], dtype=bool)
    assert np.array_equal(m.numpy(), want)


def test_data_generate_refuses_dlrm_v3(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["data", "generate", "--model", "dlrm-v3", "--out", str(tmp_path), "--scale", "tiny"])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "Error: dlrm-v3 reads requests, not Criteo rows: its data are made by 'suite run' (see docs/dlrm-v3.md)")


def test_ages_survive_fp16() -> None:
    """Ages reach the model in the serving dtype: in seconds they overflowed fp16 (65,504) and
    every old event fell in the last age bucket (torch-cuda fp16 drifted 0.16 from fp32 on the H200)."""
    import torch

    from suite.models import build

    batch = draw(32)
    dense = torch.from_numpy(batch.dense)
    assert torch.isfinite(dense.half()).all()
    sparse = [torch.from_numpy(s) for s in batch.sparse]
    model = build(SPEC)
    with torch.inference_mode():
        want = torch.sigmoid(model(dense, sparse))
        got = torch.sigmoid(model(dense.half().float(), sparse))
    assert (got - want).abs().max().item() <= 2e-2  # test_backends' fp16 tolerance
