"""The backend contract, parametrized over the registry and the model zoo.

Every backend that can run here must give the same scores as torch-cpu fp32 on the same inputs,
within a tolerance stated per precision, and pass the accuracy gate in a real LoadGen run. The
null backend is exempt from equivalence (it answers zeros by design).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import smoke_config

from suite.backends import REGISTRY, BackendConfig, get_backend
from suite.backends.base import PRECISIONS, Tunable
from suite.config import Mode, Scenario
from suite.datasets import synthetic
from suite.datasets.batch import Batch
from suite.datasets.store import Dataset
from suite.errors import BackendUnavailableError, ConfigError
from suite.models import MODELS, ModelSpec
from suite.runner import run

#: Largest absolute difference in click probability from torch-cpu fp32, per precision. fp32
#: differs only in summation order; TF32 keeps 10 mantissa bits in matmuls; bf16 keeps 8 bits
#: everywhere, fp16 11 bits but a narrower range.
TOLERANCE = {"fp32": 1e-5, "tf32": 5e-3, "bf16": 5e-2, "fp16": 2e-2}
ROWS = 4096
#: dlrm-v3's sample is a whole request (~1,000 times an item's work): a few hundred are enough.
ROWS_BY_MODEL = {"dlrm-v3": 128}


def _cases() -> list[object]:
    """(backend, precision) for every registered backend that computes (on the CPU or CUDA) and
    every precision it declares with a tolerance here, but the reference itself; CUDA ones marked."""
    cases: list[object] = []
    for name in sorted(REGISTRY):
        try:
            cls = get_backend(name)
        except BackendUnavailableError:
            continue
        if cls.device_kind not in ("cpu", "cuda"):
            continue
        marks = [pytest.mark.cuda] if cls.device_kind == "cuda" else []
        cases += [pytest.param(name, p, marks=marks) for p in cls.precisions
                  if p in TOLERANCE and (name, p) != ("torch-cpu", "fp32")]
    return cases


#: (backend, precision) pairs checked, from the registry; a pair whose backend cannot run here is skipped.
CASES = _cases()


def test_cases_come_from_the_registry() -> None:
    """Today's backends give the pairs that used to be written out by hand."""
    got = {tuple(c.values) for c in CASES}  # type: ignore[attr-defined]  # pytest.param's ParameterSet
    assert {("onnxruntime", "fp32"), ("torch-cpu", "bf16")} <= got
    assert {("torch-cuda", p) for p in ("fp32", "tf32", "bf16", "fp16")} <= got


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_backend_declares_its_capabilities(name: str) -> None:
    try:
        cls = get_backend(name)
    except BackendUnavailableError as exc:
        pytest.skip(str(exc))
    assert cls.device_kind in ("cpu", "cuda", "none", "inner")
    assert cls.precisions and set(cls.precisions) <= set(PRECISIONS)
    # Each tunable parameter brings its suite tune option and default walk (the CLI knows none by name).
    assert all(isinstance(t, Tunable) and t.flag and t.walk for t in cls.tunable.values())
    # A backend that computes names its framework (the systems JSON asks it, not a table of names).
    assert cls.framework or cls.device_kind == "inner"


def sample(model: str, n: int = 257) -> tuple[ModelSpec, Batch]:
    spec = ModelSpec(name=model, scale="tiny")
    data = Dataset.load(synthetic.ensure(spec, ROWS_BY_MODEL.get(model, ROWS)))
    rng = np.random.default_rng(0)
    rows = np.sort(rng.choice(len(data), min(n, len(data)), replace=False))
    return spec, Batch(dense=data.items.dense[rows], sparse=tuple(s[rows] for s in data.items.sparse))


def scores(name: str, spec: ModelSpec, batch: Batch, precision: str = "fp32") -> np.ndarray:
    try:
        backend = get_backend(name)(BackendConfig(model=spec, precision=precision, threads=2))
        with backend:
            backend.load()
            return backend.predict(batch)
    except BackendUnavailableError as exc:
        pytest.skip(str(exc))


@pytest.mark.parametrize("model", sorted(MODELS))
@pytest.mark.parametrize(("backend", "precision"), CASES)
def test_scores_match_torch_cpu_fp32(data_dir: Path, model: str, backend: str, precision: str) -> None:
    spec, batch = sample(model)
    want = scores("torch-cpu", spec, batch)
    got = scores(backend, spec, batch, precision)
    assert got.dtype == np.float32 and got.shape == want.shape
    assert np.max(np.abs(got - want)) <= TOLERANCE[precision]


@pytest.mark.parametrize("model", sorted(MODELS))
@pytest.mark.parametrize("backend", sorted(set(REGISTRY) - {"null"}))
def test_accuracy_run_passes_the_gate(data_dir: Path, results: Path, model: str, backend: str) -> None:
    try:
        get_backend(backend)
    except BackendUnavailableError as exc:
        pytest.skip(str(exc))
    if backend == "torch-cuda":
        pytest.importorskip("torch")
        import torch

        if not torch.cuda.is_available():
            pytest.skip("needs a CUDA GPU")
    config = smoke_config(results, model=ModelSpec(name=model, scale="tiny"), backend=backend,
                          scenario=Scenario.OFFLINE, mode=Mode.ACCURACY, rows=ROWS_BY_MODEL.get(model, ROWS))
    result = run(config)
    acc = result.data["accuracy"]
    assert acc["passed"], acc
    assert acc["auc"] >= 0.99 * float(np.mean(acc["reference_auc"]))


def test_torch_cuda_without_a_gpu_says_so(data_dir: Path) -> None:
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    backend = get_backend("torch-cuda")(BackendConfig(model=ModelSpec(name="dlrm-rmc1", scale="tiny")))
    with pytest.raises(BackendUnavailableError, match=r"^torch-cuda needs a CUDA GPU, and torch .* sees none here"):
        backend.load()


@pytest.mark.parametrize(("backend", "message"), [
    ("torch-cpu", "'precision' must be one of ['bf16', 'fp32', 'int8'] on torch-cpu (got 'fp8')"),
    ("onnxruntime", "'precision' must be one of ['fp32', 'int8'] on onnxruntime (got 'fp8')"),
])
def test_cpu_backends_refuse_fp8(data_dir: Path, backend: str, message: str) -> None:
    spec = ModelSpec(name="dlrm-rmc1", scale="tiny")
    with pytest.raises(BackendUnavailableError) as info:
        get_backend(backend)(BackendConfig(model=spec, precision="fp8")).load()
    assert str(info.value) == message


def test_onnxruntime_options_are_validated(data_dir: Path) -> None:
    spec = ModelSpec(name="dlrm-rmc1", scale="tiny")
    bad = get_backend("onnxruntime")(BackendConfig(model=spec, options=(("opt_level", "max"),)))
    with pytest.raises(ConfigError) as info:
        bad.load()
    assert str(info.value) == "'opt_level' must be one of ['all', 'basic', 'disable', 'extended'] (got 'max')"
    cuda = get_backend("onnxruntime")(BackendConfig(model=spec, options=(("provider", "cuda"),)))
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        with pytest.raises(BackendUnavailableError, match="install onnxruntime-gpu for provider=cuda"):
            cuda.load()


def test_onnx_export_is_cached_by_weights(data_dir: Path) -> None:
    spec, batch = sample("dlrm-rmc1")
    first = get_backend("onnxruntime")(BackendConfig(model=spec))
    first.load()
    path = first.model_path
    stamp = path.stat().st_mtime_ns
    second = get_backend("onnxruntime")(BackendConfig(model=spec))
    second.load()
    assert second.model_path == path and path.stat().st_mtime_ns == stamp
    other = get_backend("onnxruntime")(BackendConfig(model=ModelSpec(name="dlrm-rmc1", scale="tiny", seed=1)))
    other.load()
    assert other.model_path != path
    assert np.array_equal(first.predict(batch), second.predict(batch))
