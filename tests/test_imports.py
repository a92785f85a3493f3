"""Layout and import hygiene."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import REPO, package_dirs


def test_help_imports_neither_torch_nor_loadgen_nor_ray() -> None:
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from suite.cli import cli\n"
        "result = CliRunner().invoke(cli, ['--help'])\n"
        "assert result.exit_code == 0, result.output\n"
        "heavy = [m for m in ('torch', 'onnxruntime', 'mlperf_loadgen', 'matplotlib', 'pandas', 'pynvml', 'ray') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_backends_and_datasets_live_under_suite() -> None:
    import suite.backends
    import suite.datasets
    import suite.rule_tables

    assert suite.backends.__file__ == str(REPO / "backends" / "__init__.py")
    assert suite.datasets.__file__ == str(REPO / "datasets" / "__init__.py")
    assert suite.rule_tables.__file__ == str(REPO / "rules" / "__init__.py")


def test_top_level_datasets_is_not_ours() -> None:
    """A top-level ``import datasets`` must not find our folder (it would shadow HuggingFace's)."""
    code = "import importlib.util, sys; spec = importlib.util.find_spec('datasets'); print(spec.origin if spec else '')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/")
    assert str(REPO) not in out.stdout


# --- The import graph, read with ast (nothing is imported) ----------------------------------------

#: Imports that make a module heavy: an engine module must not pull these in at import time.
HEAVY = ("torch", "onnxruntime", "ray")
#: The backend contract the engine may import: the registry and the ABC, never a backend itself.
BACKEND_CONTRACT = ("suite.backends", "suite.backends.base")
#: Cycles that exist today, each with why; the test fails when one goes away, so the list shrinks.
KNOWN_CYCLES: set[tuple[str, str]] = set()


#: Lines a module may have without saying why in its docstring ("... over 450 lines because ...").
MAX_LINES = 450
#: Large modules another helper of issue 13 is splitting now; each leaves this list when it lands.
KNOWN_LARGE: set[str] = set()  # none: check and deeprecsched are packages now


@dataclass(frozen=True)
class Imports:
    """What one module imports: at module level (run on import) and anywhere at run time."""

    docstring: str
    module_level: frozenset[str]
    runtime: frozenset[str]


def _module_files() -> dict[str, Path]:
    """Every module setup.cfg installs, by its installed name (each subpackage is listed there)."""
    files: dict[str, Path] = {}
    for package, folder in package_dirs().items():
        for path in folder.glob("*.py"):
            files[package if path.stem == "__init__" else f"{package}.{path.stem}"] = path
    return files


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(name: str, path: Path) -> Imports:
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    module_level: set[str] = set()
    runtime: set[str] = set()

    def targets(node: ast.Import | ast.ImportFrom) -> list[str]:
        if isinstance(node, ast.Import):
            return [alias.name for alias in node.names]
        base = node.module or ""
        if node.level:
            anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            base = f"{anchor}.{base}" if base else anchor
        # ``from a import b`` imports a, and a.b when b is a submodule.
        return [base, *(f"{base}.{alias.name}" for alias in node.names)]

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for stmt in child.orelse:
                    visit(stmt, top)
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found = targets(child)
                runtime.update(found)
                if top:
                    module_level.update(found)
            inner = top and not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            visit(child, inner)

    visit(tree, True)
    return Imports(ast.get_docstring(tree) or "", frozenset(module_level), frozenset(runtime))


@pytest.fixture(scope="module")
def graph() -> dict[str, Imports]:
    return {name: _imports(name, path) for name, path in _module_files().items()}


#: Engine packages: ``suite.check`` and ``suite.submission`` are the engine, module by module.
ENGINE_PACKAGES = ("suite.check", "suite.submission")


def _engine(graph: dict[str, Imports]) -> list[str]:
    """``suite/*.py`` and the engine packages: the engine (backends, datasets and the model builders are not)."""
    return sorted(
        name for name in graph
        if (name.count(".") == 1 and name not in package_dirs())
        or any(name == p or name.startswith(p + ".") for p in ENGINE_PACKAGES)
    )  # fmt: skip


def _says_why(imports: Imports, target: str) -> bool:
    """A module may import something heavy at module level if its docstring says so and why."""
    return re.search(rf"imports ``{re.escape(target)}`` at module level because", imports.docstring) is not None


def _ours(target: str, graph: dict[str, Imports]) -> str | None:
    """The module of ours that an import target names (``suite.check.error`` -> ``suite.check``)."""
    while target and target not in graph:
        target = target.rpartition(".")[0]
    return target or None


def test_the_graph_covers_every_package(graph: dict[str, Imports]) -> None:
    assert {"suite.cli", "suite.harness", "suite.backends", "suite.backends.null", "suite.datasets.store"} <= set(graph)


def test_no_import_cycles(graph: dict[str, Imports]) -> None:
    """Cycles over every run-time import, function-local ones included (they hide a cycle, not end it)."""
    edges = {
        name: {ours for t in imports.runtime if (ours := _ours(t, graph)) not in (None, name, "suite")}
        for name, imports in graph.items()
    }
    # Strongly connected components (Tarjan), each reported as the sorted tuple of its modules.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: set[tuple[str, ...]] = set()

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in edges[node]:
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.add(tuple(sorted(component)))

    for node in sorted(edges):
        if node not in index:
            connect(node)
    assert cycles == KNOWN_CYCLES


def test_engine_imports_no_backend_and_nothing_heavy_at_module_level(graph: dict[str, Imports]) -> None:
    """Importing the engine loads no backend and, through everything it imports on load, no torch."""
    engine = _engine(graph)
    assert {"suite.cli", "suite.config", "suite.harness", "suite.runner", "suite.check"} <= set(engine)
    direct = {
        (name, backend)
        for name in engine
        for target in graph[name].module_level
        if (backend := _ours(target, graph) or "").startswith("suite.backends.")
        and backend not in BACKEND_CONTRACT
        and not _says_why(graph[name], backend)
    }
    assert direct == set()

    def parents(module: str) -> list[str]:
        parts = module.split(".")
        return [".".join(parts[:i]) for i in range(1, len(parts))]

    heavy: list[tuple[str, str, str]] = []
    for root in engine:
        seen: set[str] = set()
        todo = [root]
        while todo:
            module = todo.pop()
            if module in seen:
                continue
            seen.add(module)
            for target in graph[module].module_level:
                if target.split(".")[0] in HEAVY:
                    if not _says_why(graph[module], target.split(".")[0]):
                        heavy.append((root, module, target))
                elif (ours := _ours(target, graph)) is not None:
                    todo += [m for m in (*parents(ours), ours) if m in graph]
    assert heavy == []


def test_only_the_harness_imports_loadgen(graph: dict[str, Imports]) -> None:
    importers = sorted(name for name, imports in graph.items() if any(t.split(".")[0] == "mlperf_loadgen" for t in imports.runtime))
    assert importers == ["suite.harness"]


def test_engine_imports_no_backend_even_inside_a_function(graph: dict[str, Imports]) -> None:
    """The engine asks the registry (``suite.backends``) and the contract, never a backend module:
    a function-local import is still knowledge of one backend (tune's of the scheduler, say)."""
    found = sorted(
        (name, backend)
        for name in _engine(graph)
        for target in graph[name].runtime
        if (backend := _ours(target, graph) or "").startswith("suite.backends.") and backend not in BACKEND_CONTRACT
    )
    assert found == []


def test_no_module_is_large_without_saying_why() -> None:
    """Over :data:`MAX_LINES` lines a module says why in its docstring, or is being split now."""
    large = {}
    for name, path in _module_files().items():
        lines = len(path.read_text().splitlines())
        if lines <= MAX_LINES or name in KNOWN_LARGE:
            continue
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        if not re.search(rf"over {MAX_LINES} lines because \S", doc):
            large[name] = lines
    assert large == {}
    assert all(name in _module_files() for name in KNOWN_LARGE)


def test_every_type_ignore_says_why() -> None:
    """Every mypy ignore comment names its error code and is followed by why (``  # why`` or
    ``- why``): mypy (strict, on ``suite/``, with ``warn_unused_ignores``) checks that each is
    needed; the reason says it is right."""
    pattern = "type: " + "ignore"  # not spelled whole, so this file holds none
    silent = [
        f"{path.relative_to(REPO)}:{number}"
        for path in _python_files()
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if pattern in line and not re.search(pattern + r"\[[-a-z, ]+\] *(#|-) *\S", line)
    ]
    assert silent == []


# --- One path to LoadGen -------------------------------------------------------------------------

#: Where LoadGen's test may start: the harness (its one caller, the runner, writes every record) and
#: the harness-ceiling benchmark's no-op SUT, LoadGen's own yardstick with no suite code to record.
STARTS_LOADGEN = {"suite/harness.py", "benchmarks/harness_ceiling.py"}


def _python_files() -> list[Path]:
    return sorted(p for d in ("suite", "backends", "datasets", "rules", "benchmarks", "tests") for p in (REPO / d).rglob("*.py"))


def _loadgen_calls(path: Path) -> tuple[list[int], list[int]]:
    """Lines of ``path`` that call the harness's ``run`` (``harness.run(...)``, or ``run`` imported
    from ``suite.harness``) and lines that start a LoadGen test (``StartTest...``)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    from_harness = {alias.asname or alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                    and node.module == "suite.harness" for alias in node.names if alias.name in ("run", "_run")}
    runs, starts = [], []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in ("run", "_run") and isinstance(func.value, ast.Name) \
                and func.value.id == "harness":
            runs.append(node.lineno)
        elif isinstance(func, ast.Name) and func.id in from_harness:
            runs.append(node.lineno)
        if isinstance(func, ast.Attribute) and func.attr.startswith("StartTest"):
            starts.append(node.lineno)
    return runs, starts


def test_every_loadgen_run_goes_through_the_runner() -> None:
    """``harness.run`` is called from ``suite/runner.py`` alone (``Runner.run``, which writes
    ``config.json`` and ``result.json``): ``suite run``, ``audit``, ``tune``, the benchmarks and the
    tests all make their LoadGen runs through it, so every run leaves its record."""
    callers, starters = {}, {}
    for path in _python_files():
        runs, starts = _loadgen_calls(path)
        name = str(path.relative_to(REPO))
        if runs:
            callers[name] = runs
        if starts and name not in STARTS_LOADGEN:
            starters[name] = starts
    assert set(callers) == {"suite/runner.py"}, callers
    assert starters == {}


def test_the_loadgen_call_finder_sees_both_spellings(tmp_path: Path) -> None:
    code = tmp_path / "x.py"
    code.write_text("from suite import harness\nfrom suite.harness import run as go\n"
                    "harness.run(1)\ngo(2)\nlg.StartTestWithLogSettings(3)\nrunner.run()\n")
    assert _loadgen_calls(code) == ([3, 4], [5])
