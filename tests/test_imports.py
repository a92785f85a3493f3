"""Layout and import hygiene."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO


def test_help_imports_neither_torch_nor_loadgen() -> None:
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from suite.cli import cli\n"
        "result = CliRunner().invoke(cli, ['--help'])\n"
        "assert result.exit_code == 0, result.output\n"
        "heavy = [m for m in ('torch', 'onnxruntime', 'mlperf_loadgen', 'matplotlib', 'pandas', 'pynvml') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_backends_and_datasets_live_under_suite() -> None:
    import suite.backends
    import suite.datasets

    assert suite.backends.__file__ == str(REPO / "backends" / "__init__.py")
    assert suite.datasets.__file__ == str(REPO / "datasets" / "__init__.py")


def test_top_level_datasets_is_not_ours() -> None:
    """A top-level ``import datasets`` must not find our folder (it would shadow HuggingFace's)."""
    code = "import importlib.util, sys; spec = importlib.util.find_spec('datasets'); print(spec.origin if spec else '')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/")
    assert str(REPO) not in out.stdout
