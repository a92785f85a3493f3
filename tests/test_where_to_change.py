"""The README's "Where to change what", held to its word: each change needs the files it names.

A new backend is one module and one registry line (it runs, lists and places by its capabilities);
a model's config is registered beside its definition and judged by a rule table; every MLPerf rule
set has its submission format; every field the record declares is documented; a placement is one
module and one registry line.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import re
import sys
import typing
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import REPO

from suite.backends import REGISTRY, get_backend
from suite.cli import cli
from suite.config import RunConfig, Scenario
from suite.errors import ConfigError
from suite.models import MODELS, ModelSpec

#: A backend as a newcomer writes it: its own module, nothing else of the suite changed.
ECHO_MODULE = '''
import numpy as np

from suite.backends.base import Backend, BackendInfo


class EchoBackend(Backend):
    """Scores each item by its first dense feature, squashed into [0, 1]."""

    name = "echo-gpu"
    framework = "Echo 1.0"
    device_kind = "cuda"
    precisions = ("fp32", "bf16")

    def load(self) -> None:
        pass

    def predict(self, batch):
        return (1 / (1 + np.exp(-batch.dense[:, 0]))).astype(np.float32)

    def info(self) -> BackendInfo:
        return BackendInfo(name=self.name, version="1.0", device="cpu", precision=self.config.precision,
                           threads=self.config.threads)

    def close(self) -> None:
        pass
'''

TINY = ["--model", "dlrm-rmc1", "--scale", "tiny", "--profile", "smoke", "--no-progress"]


@pytest.fixture
def echo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """``backends/echo.py`` and its ``REGISTRY`` line, stood in by a module on the path."""
    (tmp_path / "echo_backend.py").write_text(ECHO_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(REGISTRY, "echo-gpu", "echo_backend:EchoBackend")
    yield "echo-gpu"
    sys.modules.pop("echo_backend", None)


def test_a_new_backend_is_a_module_and_a_registry_line(echo: str, runner: CliRunner, tmp_path: Path) -> None:
    listed = runner.invoke(cli, ["backends"])
    assert listed.exit_code == 0 and any(line.startswith(f"{echo} ") for line in listed.stdout.splitlines())
    out = tmp_path / "results"
    done = runner.invoke(cli, ["run", *TINY, "--backend", echo, "--scenario", "offline", "--target-qps", "2000",
                               "--system", "echo", "--output", str(out)])
    assert done.exit_code in (0, 1), done.output  # a smoke run may be INVALID on a busy machine
    data = json.loads((out / "echo/dlrm-rmc1/Offline/performance/run_1/result.json").read_text())
    assert data["backend"]["name"] == echo and data["status"] in ("valid", "invalid")
    # Its capabilities place it: a GPU backend fits --devices, and --processes is refused for it.
    from suite.placement.backend import check_fits

    backend_cls = get_backend(echo)
    model = ModelSpec(name="dlrm-rmc1", scale="tiny")
    check_fits(RunConfig(model=model, backend=echo, scenario=Scenario.OFFLINE, devices="2"), backend_cls)
    with pytest.raises(ConfigError, match=r"^'processes' is for CPU backends \(got 'echo-gpu'; use --devices for GPUs\)$"):
        check_fits(RunConfig(model=model, backend=echo, scenario=Scenario.OFFLINE, processes=2), backend_cls)


def test_a_new_backends_tune_options_are_its_own_declaration(echo: str, runner: CliRunner,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A backend with a tunable parameter brings its ``suite tune`` option with it: no CLI change."""
    from suite.backends.base import Tunable
    from suite.tune import parse_walks

    monkeypatch.setattr(get_backend(echo), "tunable", {"lanes": Tunable("lane-counts", "Lanes, walked in order.", (1, 2), lo=1)})
    shown = runner.invoke(cli, ["tune", "--help"])
    assert shown.exit_code == 0 and "--lane-counts" in shown.stdout and "echo-gpu: Lanes, walked in order." in shown.stdout
    assert parse_walks(echo, {"lane-counts": "1,4"}) == (("lanes", (1, 4)),)
    with pytest.raises(ConfigError, match=r"^'batch-sizes' is not a tune option of backend 'echo-gpu' \(its: \['lane-counts'\]\)$"):
        parse_walks(echo, {"batch-sizes": "32"})
    with pytest.raises(ConfigError, match=r"^'lane-counts' must be an integer in \[1, inf\] \(got '0'\)$"):
        parse_walks(echo, {"lane-counts": "0"})


#: Where an engine module may spell a backend's name, each with why.
NAMED = {
    ("suite/cli.py", "deeprecsched"): "suite tune's default backend",
    ("suite/tune.py", "deeprecsched"): "TuneConfig's default backend, as the CLI's",
    ("suite/runner.py", "onnxruntime"): "the onnxruntime distribution's version, recorded in the environment",
    ("suite/submit.py", "null"): "a recorded device string 'null' (not a backend's name) is no accelerator",
}


def test_the_engine_names_no_backend() -> None:
    """No engine module spells a registered backend's name in code but where :data:`NAMED` says
    why: it asks the registry and the capabilities, so a new backend needs no engine change."""
    found = set()
    for path in sorted((REPO / "suite").rglob("*.py")):
        rel = str(path.relative_to(REPO))
        if rel.startswith("suite/models/"):
            continue  # the model zoo: models, not backends
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in REGISTRY:
                found.add((rel, node.value))
    assert found == set(NAMED)


def test_the_engine_names_no_model() -> None:
    """A new model is its module, its config and its rule line: no engine module outside the model
    zoo spells a model's name (backends may: a fused kernel knows the models it fuses)."""
    found = sorted(
        (str(path.relative_to(REPO)), node.value)
        for path in (REPO / "suite").rglob("*.py") if not str(path.relative_to(REPO)).startswith("suite/models/")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in MODELS
    )  # fmt: skip
    assert found == []


def test_a_model_is_registered_beside_its_config_and_judged_by_a_rule_table() -> None:
    from suite.models import configs
    from suite.models.base import ModelConfig
    from suite.rules import RuleSet, available

    defined = {v.name for v in vars(configs).values() if isinstance(v, ModelConfig)}
    assert set(MODELS) == defined == {c.name for c in configs.ALL}
    tables = {name: set(RuleSet.load(name).models) for name in available()}
    assert [m for m in MODELS if not any(m in models for models in tables.values())] == []


def test_every_mlperf_rule_set_has_its_submission_format() -> None:
    """A new round is a rule table and its submission format: one without the other is caught
    (``for_rules`` would otherwise fall back to the default format in silence)."""
    from suite.rules import available
    from suite.submission import FORMATS

    assert sorted(FORMATS) == [name for name in available() if name.startswith("mlperf-")]


def _declared(cls: type, seen: set[type]) -> list[tuple[str, str]]:
    """(section, field) for every field ``cls`` and the record sections it holds declare."""
    from suite.record import _Record

    if cls in seen:
        return []
    seen.add(cls)
    hints = typing.get_type_hints(cls)
    found = []
    for f in dataclasses.fields(cls):
        if f.name in ("extra", "keys"):
            continue
        found.append((cls.__name__, f.name))
        for tp in (hints[f.name], *typing.get_args(hints[f.name])):
            if isinstance(tp, type) and issubclass(tp, _Record):
                found += _declared(tp, seen)
    return found


def test_every_record_field_is_documented() -> None:
    """A new field in the record is its declaration in ``suite/record.py`` and its line in
    ``docs/records.md`` (the runner writes its value): a declared field the doc does not name fails."""
    from suite.record import ResultRecord

    documented = set(re.findall(r"`([a-z_0-9]+)`", (REPO / "docs" / "records.md").read_text()))
    missing = [f"{section}.{name}" for section, name in _declared(ResultRecord, set()) if name not in documented]
    assert missing == []


#: A placement as a newcomer writes it: workers as threads of a "cluster" of this host, chosen by
#: ``--cluster here``. (A real one implements start, attach, submit, dead and close itself.)
HERE_MODULE = '''
from suite.placement.backend import PlacedBackend, cpu_specs
from suite.placement.local import ThreadPlacement
from suite.backends.base import BackendConfig


class HerePlacement(ThreadPlacement):
    name = "here"
    address_form = "here"

    @classmethod
    def place(cls, config, backend_cls, cores):
        inner = BackendConfig(model=config.model, threads=1, precision=config.precision)
        return PlacedBackend(backend_cls.name, inner, cls(), cpu_specs(backend_cls.name, inner, 2)), 1, 4
'''


def test_a_placement_is_a_module_and_a_registry_line(runner: CliRunner, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A new placement is its module and its line in ``PLACEMENTS``: ``--cluster NAME`` chooses it
    by name, and a run on it is recorded as placed there."""
    from suite.placement import PLACEMENTS, Placement, get_placement

    assert all(issubclass(get_placement(name), Placement) for name in PLACEMENTS)
    (tmp_path / "here_placement.py").write_text(HERE_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(PLACEMENTS, "here", "here_placement:HerePlacement")
    try:
        bad = runner.invoke(cli, ["run", *TINY, "--backend", "null", "--scenario", "offline", "--cluster", "there"])
        assert (bad.exit_code, bad.stderr.strip()) == (2, "Error: 'cluster' must be ray (RAY_ADDRESS, else the cluster "
                                                          "`ray start` started here) or ray://HOST:PORT or here (got 'there')")
        out = tmp_path / "results"
        done = runner.invoke(cli, ["run", *TINY, "--backend", "null", "--scenario", "offline", "--target-qps", "2000",
                                   "--cluster", "here", "--system", "here", "--output", str(out)])
        assert done.exit_code in (0, 1), done.output  # a smoke run may be INVALID on a busy machine
        data = json.loads((out / "here/dlrm-rmc1/Offline/performance/run_1/result.json").read_text())
        assert data["placement"]["name"] == "here"
        assert data["backend"]["placed_workers"] == 2
    finally:
        sys.modules.pop("here_placement", None)
