"""The dataset cache: written atomically, its meta recording every array, verified on load, and a
damaged generated cache rebuilt (an imported dataset is refused instead, never rebuilt)."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from suite.cli import cli
from suite.datasets import store, synthetic
from suite.datasets.store import Dataset
from suite.errors import DatasetError
from suite.models import ModelSpec

SPEC = ModelSpec(name="dlrm-rmc1", scale="tiny")
ROWS = 600
SMOKE = ["--model", "dlrm-rmc1", "--scale", "tiny", "--profile", "smoke", "--system", "store", "--no-progress"]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One generated cache entry; tests copy it and damage the copy."""
    return synthetic.ensure(SPEC, ROWS, tmp_path_factory.mktemp("pristine"))


@pytest.fixture
def cache(pristine: Path, tmp_path: Path) -> Path:
    """A data root holding a copy of the pristine entry, at the path ``ensure`` looks for."""
    root = tmp_path / "data"
    shutil.copytree(pristine, synthetic.cache_path(SPEC, ROWS, root))
    return root


def test_meta_records_every_arrays_size_shape_dtype_and_sha256(pristine: Path) -> None:
    meta = json.loads((pristine / "meta.json").read_text())
    assert meta["format"] == 2
    assert sorted(meta["arrays"]) == ["dense.npy", "labels.npy", *(f"sparse_{t:02d}.npy" for t in range(8))]
    for name, record in meta["arrays"].items():
        data = (pristine / name).read_bytes()
        array = np.load(pristine / name)
        assert record == {
            "bytes": len(data),
            "shape": list(array.shape),
            "dtype": str(array.dtype),
            "sha256": hashlib.sha256(data).hexdigest(),
        }
    assert store.verify(pristine) is None


def _zero_bytes(path: Path) -> None:
    (path / "sparse_03.npy").write_bytes(b"")


def _truncate(path: Path) -> None:
    data = (path / "dense.npy").read_bytes()
    (path / "dense.npy").write_bytes(data[:-100])


def _delete_meta(path: Path) -> None:
    (path / "meta.json").unlink()


def _garbage_meta(path: Path) -> None:
    (path / "meta.json").write_text("{not json")


def _old_format(path: Path) -> None:
    meta = json.loads((path / "meta.json").read_text())
    del meta["arrays"]
    meta["format"] = 1
    (path / "meta.json").write_text(json.dumps(meta))


def _header(path: Path) -> None:
    data = bytearray((path / "labels.npy").read_bytes())
    data[:6] = b"NOTNPY"
    (path / "labels.npy").write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        (_zero_bytes, "sparse_03.npy holds 0 bytes, meta.json says 192128"),
        (_truncate, "dense.npy holds 307228 bytes, meta.json says 307328"),
        (_delete_meta, "meta.json is missing"),
        (_garbage_meta, "meta.json is unreadable"),
        (_old_format, "format 1 without checksums, written by an older recsuite"),
        (_header, "labels.npy is unreadable (ValueError: "),
    ],
)
def test_damaged_generated_cache_is_rebuilt_with_one_warning(
    cache: Path, pristine: Path, caplog: pytest.LogCaptureFixture, damage: Callable[[Path], None], why: str
) -> None:
    path = synthetic.cache_path(SPEC, ROWS, cache)
    damage(path)
    with caplog.at_level(logging.WARNING, logger="suite.datasets.synthetic"):
        assert synthetic.ensure(SPEC, ROWS, cache) == path
    [record] = caplog.records
    assert record.getMessage().startswith(f"dataset cache {path} is damaged ({why}")
    assert record.getMessage().endswith("; rebuilding it")
    # Rebuilt byte for byte (same seed, same data), and left alone on the next call.
    assert json.loads((path / "meta.json").read_text())["arrays"] == json.loads((pristine / "meta.json").read_text())["arrays"]
    assert store.verify(path) is None
    caplog.clear()
    synthetic.ensure(SPEC, ROWS, cache)
    assert caplog.records == []
    assert sorted(p.name for p in cache.iterdir()) == [f".{path.name}.lock", path.name]  # nothing left beside it


def test_run_on_a_damaged_cache_rebuilds_it_and_runs(cache: Path, tmp_path: Path) -> None:
    # A 0-byte .npy used to end `suite run` with only "Aborted!" (click's word for an EOFError).
    _zero_bytes(synthetic.cache_path(SPEC, ROWS, cache))
    result = CliRunner().invoke(cli, ["run", *SMOKE, "--backend", "null", "--scenario", "offline", "--rows", str(ROWS),
                                      "--target-qps", "2000", "--data-dir", str(cache), "--output", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    assert store.verify(synthetic.cache_path(SPEC, ROWS, cache)) is None


def test_damaged_imported_dataset_is_a_dataset_error_never_rebuilt(pristine: Path, tmp_path: Path) -> None:
    imported = tmp_path / "imported"
    shutil.copytree(pristine, imported)
    _truncate(imported)
    before = (imported / "dense.npy").read_bytes()
    result = CliRunner().invoke(cli, ["run", *SMOKE, "--backend", "null", "--scenario", "offline",
                                      "--dataset", str(imported), "--output", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert result.stderr == f"Error: {imported}: damaged dataset (dense.npy holds 307228 bytes, meta.json says 307328)\n"
    assert (imported / "dense.npy").read_bytes() == before
    with pytest.raises(DatasetError) as info:
        Dataset.load(imported, in_memory=False)
    assert str(info.value) == f"{imported}: damaged dataset (dense.npy holds 307228 bytes, meta.json says 307328)"


def test_data_verify_checks_the_sha256(pristine: Path, tmp_path: Path) -> None:
    root = tmp_path / "data"
    entry = synthetic.cache_path(SPEC, ROWS, root)
    shutil.copytree(pristine, entry)
    runner = CliRunner()
    result = runner.invoke(cli, ["data", "verify", "--data-dir", str(root)])
    assert result.exit_code == 0 and result.stdout == f"ok         {entry}\n"
    # One flipped bit in the data keeps every size, shape and dtype: only the checksum sees it.
    data = bytearray((entry / "dense.npy").read_bytes())
    data[-1] ^= 1
    (entry / "dense.npy").write_bytes(bytes(data))
    assert Dataset.load(entry) is not None
    result = runner.invoke(cli, ["data", "verify", "--data-dir", str(root)])
    assert result.exit_code == 1
    assert result.stdout == (f"DAMAGED    {entry}: dense.npy does not match its sha256 in meta.json; "
                             "remove it and the next run rebuilds it\n")
    _old_format(entry)
    result = runner.invoke(cli, ["data", "verify", str(entry)])
    assert result.exit_code == 1
    assert result.stdout == f"UNCHECKED  {entry}: {store.UNCHECKED}\n"


def test_save_keeps_a_dataset_another_writer_made(pristine: Path, tmp_path: Path) -> None:
    data = Dataset.load(pristine)
    target = tmp_path / "ds"
    shutil.copytree(pristine, target)
    (target / "marker").write_text("theirs")
    store.save(target, data.items, data.labels, {"source": "mine"})
    assert (target / "marker").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]  # no temporary folder left
    store.save(target, data.items, data.labels, {"source": "mine"}, replace=True)
    assert not (target / "marker").exists() and store.read_meta(target)["source"] == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]
