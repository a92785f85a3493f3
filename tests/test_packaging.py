"""A built wheel installs and runs outside the repository, rule tables included.

The wheel is built from a copy of the files setup.cfg names (no network, no build isolation: the
test venv's setuptools, which torch requires at >= 77, builds it) and installed with ``--no-deps``
into a fresh venv whose only link to the test venv is a ``.pth`` line for its site-packages, so the
dependencies resolve there while ``suite`` itself can only come from the wheel. Every command runs
from a temporary folder outside the repository.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import REPO, package_dirs

from suite.rules import RuleSet

# What a build reads besides the package folders: the metadata and the README (long_description).
BUILD_FILES = ("setup.cfg", "pyproject.toml", "README.md")


@dataclass(frozen=True)
class Installed:
    """A venv holding only the built wheel, and where to run it from."""

    wheel: Path
    python: Path
    suite: Path
    cwd: Path
    env: dict[str, str]

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.suite), *args], cwd=self.cwd, env=self.env, capture_output=True, text=True, timeout=300
        )


def _source_folders() -> set[str]:
    """The top-level folders that hold setup.cfg's packages (``suite``, ``backends``, ``rules``, ...)."""
    return {folder.relative_to(REPO).parts[0] for folder in package_dirs().values()}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Iterator[Installed]:
    base = tmp_path_factory.mktemp("packaging")
    src = base / "src"
    src.mkdir()
    for name in BUILD_FILES:
        shutil.copy2(REPO / name, src / name)
    for folder in _source_folders():
        shutil.copytree(REPO / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__"))
    quiet = ["--quiet", "--disable-pip-version-check", "--no-index", "--no-deps"]
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", *quiet, "--no-build-isolation", "--wheel-dir", str(base / "dist"), str(src)],
        capture_output=True, text=True, timeout=300,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = (base / "dist").glob("recsuite-*.whl")

    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    deps = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    Path(site, "recsuite-test-deps.pth").write_text("".join(f"{path}\n" for path in deps))
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", *quiet, str(wheel)],
        capture_output=True, text=True, timeout=300,
    )
    assert install.returncode == 0, install.stderr

    cwd = base / "elsewhere"
    cwd.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "RECSUITE_RULES_DIR")}
    env["RECSUITE_DATA_DIR"] = str(data_dir)
    yield Installed(wheel=wheel, python=python, suite=venv / "bin" / "suite", cwd=cwd, env=env)


def test_wheel_ships_every_rule_table(installed: Installed) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    tables = sorted(p.name for p in (REPO / "rules").glob("*.toml"))
    assert tables
    assert {f"suite/rule_tables/{name}" for name in tables} <= names


def test_installed_suite_comes_from_the_wheel(installed: Installed) -> None:
    code = "import suite, suite.rules as r; print(suite.__file__); print(r.rules_dir()); print(','.join(r.available()))"
    out = subprocess.run(
        [str(installed.python), "-c", code], cwd=installed.cwd, env=installed.env, capture_output=True, text=True,
        check=True,
    ).stdout.splitlines()
    venv = installed.python.parent.parent
    assert Path(out[0]).is_relative_to(venv) and Path(out[1]).is_relative_to(venv)
    assert out[2].split(",") == sorted(p.stem for p in (REPO / "rules").glob("*.toml"))


def test_installed_help_and_models(installed: Installed) -> None:
    help_ = installed.run("--help")
    assert help_.returncode == 0, help_.stderr
    assert "Usage: suite" in help_.stdout
    models = installed.run("models")
    assert models.returncode == 0, models.stderr
    assert "dlrm-rmc1" in models.stdout


def test_installed_smoke_run_reads_the_packaged_rule_table(installed: Installed) -> None:
    out = installed.cwd / "results"
    run = installed.run(
        "run", "--model", "dlrm-rmc1", "--backend", "null", "--scenario", "offline", "--scale", "tiny",
        "--profile", "smoke", "--output", str(out),
    )
    assert run.returncode == 0, run.stderr
    (record,) = out.glob("*/dlrm-rmc1/Offline/performance/run_1/result.json")
    settings = json.loads(record.read_text())["settings"]
    smoke = RuleSet.load("deeprecsys").profiles["smoke"]
    assert (settings["rules"], settings["profile"]) == ("deeprecsys", "smoke")
    assert settings["min_duration_ms"] == smoke["*.*.min_duration_ms"]
