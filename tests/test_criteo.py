"""The Criteo format: real rows read exactly, round trips, malformed lines named by line."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from suite.datasets import criteo
from suite.errors import DatasetError


def read_all(path: Path, layout: criteo.Layout = criteo.CRITEO, **kw: object) -> criteo.RawBlock:
    blocks = list(criteo.read(path, layout, **kw))
    assert len(blocks) == 1
    return blocks[0]


def test_kaggle_sample_reads_exactly(kaggle_sample: Path) -> None:
    block = read_all(kaggle_sample)
    assert len(block) == 100
    assert int(block.labels.sum()) == 29
    assert int((block.dense < 0).sum()) == 11
    assert int(block.dense_missing.sum()) == 297
    assert int(block.cat_missing.sum()) == 303
    first = kaggle_sample.read_text().splitlines()[0].split("\t")
    assert block.dense[0, 1] == int(first[2])
    assert block.dense_missing[0, 0] and block.dense[0, 0] == 0
    assert block.cats[0][0, 0] == int(first[14], 16)


def test_kaggle_sample_round_trips_byte_for_byte(kaggle_sample: Path, tmp_path: Path) -> None:
    out = tmp_path / "again.tsv"
    criteo.write(out, criteo.read(kaggle_sample))
    assert out.read_bytes() == kaggle_sample.read_bytes()


def test_gzip_and_chunks_read_the_same(kaggle_sample: Path, tmp_path: Path) -> None:
    gz = tmp_path / "day_0.gz"
    gz.write_bytes(gzip.compress(kaggle_sample.read_bytes()))
    plain = read_all(kaggle_sample)
    chunks = list(criteo.read(gz, chunk_rows=30))
    assert [len(c) for c in chunks] == [30, 30, 30, 10]
    assert np.array_equal(np.concatenate([c.dense for c in chunks]), plain.dense)
    for t in range(criteo.CAT_FEATURE_COUNT):
        assert np.array_equal(np.concatenate([c.cats[t] for c in chunks]), plain.cats[t])


def test_to_batch_follows_dlrm_conventions(kaggle_sample: Path) -> None:
    block = read_all(kaggle_sample)
    rows = [1000] * criteo.CAT_FEATURE_COUNT
    batch = block.to_batch(rows)
    assert batch.dense.dtype == np.float32
    assert np.all(batch.dense[block.dense_missing] == 0)
    assert np.all(batch.dense[block.dense < 0] == 0)
    assert np.allclose(batch.dense[~block.dense_missing & (block.dense > 0)],
                       np.log1p(block.dense[~block.dense_missing & (block.dense > 0)]))
    assert all(s.dtype == np.int32 and s.max() < 1000 for s in batch.sparse)
    assert batch.sparse[0][0, 0] == int("05db9164", 16) % 1000


def _line(label: str = "1", ints: list[str] | None = None, cats: list[str] | None = None) -> str:
    ints = ["1"] * 13 if ints is None else ints
    cats = ["0a0b0c0d"] * 26 if cats is None else cats
    return "\t".join([label, *ints, *cats]) + "\n"


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (_line()[:-30] + "\n", "expected 40 tab-separated fields, found 37"),
        (_line(cats=["0a0b0c0d"] * 25 + ["xyz"]), "column C26 must be hex ids (got 'xyz')"),
        (_line(ints=["1"] * 5 + ["seven"] + ["1"] * 7), "column I6 must be an integer (got 'seven')"),
        (_line(label="2"), "label must be 0 or 1 (got '2')"),
    ],
    ids=["too-few-fields", "non-hex-id", "text-in-integer", "bad-label"],
)
def test_malformed_line_names_file_and_line(tmp_path: Path, bad: str, message: str) -> None:
    path = tmp_path / "bad.tsv"
    path.write_text(_line() + _line() + bad + _line())
    with pytest.raises(DatasetError) as info:
        list(criteo.read(path))
    assert str(info.value) == f"{path}:3: {message}"


def test_bag_fields_and_multi_task_labels_round_trip(tmp_path: Path) -> None:
    layout = criteo.Layout(dense=2, lookups=(3, 1), tasks=2)
    text = "1,0\t5\t\t0000000a,0000000b,0000000c\t000000ff\n0,1\t\t-1\t00000001,00000002,00000003\t\n"
    block = criteo.parse_lines(text.splitlines(keepends=True), layout)
    assert block.labels.tolist() == [[1, 0], [0, 1]]
    assert block.cats[0].tolist() == [[10, 11, 12], [1, 2, 3]]
    assert block.cat_missing.tolist() == [[False, False], [False, True]]
    assert "".join(criteo.format_lines(block)) == text


def test_bag_of_wrong_size_is_refused() -> None:
    layout = criteo.Layout(dense=1, lookups=(3,))
    with pytest.raises(DatasetError, match=r"<text>:1: column C1 must hold 3 comma-separated ids \(found 2\)"):
        criteo.parse_lines(["1\t2\t0a,0b\n"], layout)


def test_missing_file_is_a_dataset_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="cannot read"):
        list(criteo.read(tmp_path / "nope.tsv"))


def test_a_streamed_multi_hot_expansion_equals_the_whole_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    """Above WHOLE_LIMIT the expansion replays MLPerf's random stream in chunks (full-scale DLRM-v2
    would need 24 GB of tables): the ids are the same as from the whole tables."""
    from suite.datasets import multihot, synthetic
    from suite.models import ModelSpec

    schema = ModelSpec(name="dlrm-v2", scale="3000").schema
    raw = synthetic.features(schema, 500, np.random.default_rng(0))
    whole = multihot.model_inputs(raw, schema)
    monkeypatch.setattr(multihot, "WHOLE_LIMIT", 0)
    monkeypatch.setattr(multihot, "CHUNK_ROWS", 700)
    streamed = multihot.model_inputs(raw, schema)
    assert all(np.array_equal(a, b) for a, b in zip(whole.sparse, streamed.sparse, strict=False))
    assert np.array_equal(whole.dense, streamed.dense)
