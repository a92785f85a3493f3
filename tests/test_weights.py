"""``--weights FILE``: trained weights served by every backend, checked key by key, hashed."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import save_file

from suite.backends import BackendConfig, get_backend
from suite.cli import cli
from suite.datasets import synthetic
from suite.datasets.batch import Batch
from suite.datasets.store import Dataset
from suite.models import ModelSpec, WeightsFile, build

TINY = ModelSpec(name="dlrm-rmc1", scale="tiny")
#: The "trained" weights of these tests: the same model seeded differently, so its scores differ
#: from the seeded model every backend would otherwise serve.
TRAINED = ModelSpec(name="dlrm-rmc1", scale="tiny", seed=7)
RUN = ["run", "--model", "dlrm-rmc1", "--backend", "torch-cpu", "--scenario", "offline", "--scale", "tiny",
       "--profile", "smoke", "--system", "sys", "--no-progress", "--rows", "2048"]  # fmt: skip


def _state() -> dict[str, torch.Tensor]:
    return {k: v.contiguous() for k, v in build(TRAINED).state_dict().items()}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The trained weights as safetensors and as torch.save, and broken variants of them."""
    root = tmp_path_factory.mktemp("weights")
    state = _state()
    out = {"safetensors": root / "trained.safetensors", "torch": root / "trained.pt"}
    save_file(state, out["safetensors"])
    torch.save(state, out["torch"])
    missing = dict(state)
    del missing["bottom.0.weight"]
    out["missing"] = root / "missing.safetensors"
    save_file(missing, out["missing"])
    out["unexpected"] = root / "unexpected.pt"
    torch.save({**state, "head.extra": torch.zeros(2)}, out["unexpected"])
    out["shape"] = root / "shape.safetensors"
    save_file({**state, "top.0.bias": torch.zeros(3)}, out["shape"])
    out["pickle"] = root / "module.pt"
    torch.save(build(TRAINED), out["pickle"])  # a whole module: weights_only refuses to unpickle it
    out["ints"] = root / "ints.pt"
    torch.save({**state, "top.0.bias": torch.zeros(state["top.0.bias"].shape, dtype=torch.int64)}, out["ints"])
    return out


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> Batch:
    data = Dataset.load(synthetic.ensure(TINY, 2048, tmp_path_factory.mktemp("data")))
    return Batch(dense=data.items.dense[:300], sparse=tuple(s[:300] for s in data.items.sparse))


def _scores(backend: str, spec: ModelSpec, batch: Batch, **options: str) -> np.ndarray:
    with get_backend(backend)(BackendConfig(model=spec, threads=1, options=tuple(options.items()))) as b:
        b.load()
        if hasattr(b, "attach_items"):
            b.attach_items(batch)
        return b.predict(batch)


@pytest.mark.parametrize("fmt", ["safetensors", "torch"])
def test_torch_cpu_serves_the_file_not_the_seeded_weights(files: dict[str, Path], batch: Batch, fmt: str) -> None:
    loaded = ModelSpec(name="dlrm-rmc1", scale="tiny", weights=WeightsFile.of(files[fmt]))
    assert loaded.weights is not None and loaded.weights.format == fmt
    got = _scores("torch-cpu", loaded, batch)
    np.testing.assert_array_equal(got, _scores("torch-cpu", TRAINED, batch))
    assert not np.allclose(got, _scores("torch-cpu", TINY, batch))


def test_onnxruntime_and_deeprecsched_workers_serve_the_file(
    data_dir: Path, files: dict[str, Path], batch: Batch
) -> None:
    loaded = ModelSpec(name="dlrm-rmc1", scale="tiny", weights=WeightsFile.of(files["safetensors"]))
    want = _scores("torch-cpu", TRAINED, batch)
    ort = get_backend("onnxruntime")(BackendConfig(model=loaded, threads=1))
    ort.load()
    # The export cache is keyed by the file's hash: the seeded model's export is never reused.
    assert f"-w{loaded.weights.sha256[:16]}-" in ort.model_path.name
    np.testing.assert_allclose(ort.predict(batch), want, rtol=1e-4, atol=1e-5)
    sched = _scores("deeprecsched", loaded, batch, pool="process", batch_items="64")
    np.testing.assert_allclose(sched, want, rtol=1e-4, atol=1e-5)


def test_run_records_the_sha256_in_config_and_result(runner: CliRunner, files: dict[str, Path], results: Path) -> None:
    out = runner.invoke(cli, [*RUN, "--mode", "accuracy", "--weights", str(files["torch"]), "--output", str(results)])
    assert out.exit_code == 0, out.output
    folder = results / "sys/dlrm-rmc1/Offline/accuracy"
    digest = hashlib.sha256(files["torch"].read_bytes()).hexdigest()
    for name in ("config.json", "result.json"):
        weights = json.loads((folder / name).read_text())["config"]["model"]["weights"]
        assert weights == {"path": str(files["torch"].resolve()), "sha256": digest, "format": "torch"}
    # The data are still the seeded teacher's: the trained model is scored against them.
    assert json.loads((folder / "result.json").read_text())["dataset"]["model"]["seed"] == 0


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("missing", "does not fit dlrm-rmc1 at scale tiny: lacks the model's key 'bottom.0.weight'"),
        ("unexpected", "does not fit dlrm-rmc1 at scale tiny: has a key the model lacks: 'head.extra'"),
        ("shape", "does not fit dlrm-rmc1 at scale tiny: has 'top.0.bias' of shape [3], the model's is [256]"),
        ("ints", "does not fit dlrm-rmc1 at scale tiny: 'top.0.bias' is torch.int64, not floating point"),
        ("pickle", "is neither safetensors nor a state_dict torch.load(weights_only=True) reads (UnpicklingError: "
                   "Weights only load failed. This file can still be loaded, to do so you have two options, do those "
                   "steps only if you trust the source of the checkpoint.)"),
    ],
)  # fmt: skip
@pytest.mark.parametrize("command", ["run", "audit", "tune"])
def test_a_weights_file_that_does_not_fit_is_refused_before_anything_is_written(
    runner: CliRunner, files: dict[str, Path], tmp_path: Path, name: str, problem: str, command: str
) -> None:
    out_dir = tmp_path / "out"
    args = {
        "run": RUN,
        "audit": ["audit", "TEST01", *RUN[1:]],
        "tune": ["tune", "--model", "dlrm-rmc1", "--scale", "tiny", "--profile", "smoke", "--system", "sys"],
    }[command]
    out = runner.invoke(cli, [*args, "--weights", str(files[name]), "--output", str(out_dir)])
    assert out.exit_code == 2, out.output
    assert out.output == f"Error: 'weights' file {str(files[name].resolve())!r} {problem}\n"
    assert not out_dir.exists()


def test_a_missing_weights_file_is_exit_2(runner: CliRunner, tmp_path: Path) -> None:
    out = runner.invoke(cli, [*RUN, "--weights", str(tmp_path / "nope.safetensors"), "--output", str(tmp_path / "o")])
    assert out.exit_code == 2
    assert out.output == f"Error: 'weights' file {str(tmp_path / 'nope.safetensors')!r} does not exist\n"


def test_a_file_changed_after_it_was_hashed_is_refused_by_the_build(files: dict[str, Path], tmp_path: Path) -> None:
    copy = tmp_path / "w.safetensors"
    copy.write_bytes(files["safetensors"].read_bytes())
    spec = ModelSpec(name="dlrm-rmc1", scale="tiny", weights=WeightsFile.of(copy))
    save_file(_state() | {"top.0.bias": torch.ones(256)}, copy)
    with pytest.raises(Exception, match=r"changed since the run was configured \(sha256 [0-9a-f]{12}\.\.\., recorded"):
        build(spec)
