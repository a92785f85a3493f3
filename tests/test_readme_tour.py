"""The README is a test: its CLI tour runs top to bottom from an empty folder, and every repository
path it names exists."""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

README = REPO / "README.md"
#: Commands of the tour that may exit 1 as well as 0: ``suite check`` says FAIL (exit 1) when a
#: smoke Server run on a busy machine misses its latency bound; the tour still goes on.
MAY_FAIL = ("suite check ",)
#: First path components that name the repository's own files (plus ``shared``: the README must
#: never point outside the repository, and a clone has no ``../shared``).
REPO_DIRS = ("backends", "benchmarks", "datasets", "docs", "rules", "suite", "tests", ".ci", "shared", "../shared")


def tour_commands(text: str) -> list[str]:
    """The commands of the first ``sh`` block under ``## CLI tour``, continuation lines joined."""
    section = text[text.index("\n## CLI tour\n"):]
    block = section[section.index("```sh\n") + len("```sh\n"):]
    block = block[: block.index("```")]
    commands, current = [], ""
    for line in block.splitlines():
        current += line.rstrip()
        if current.endswith("\\"):
            current = current[:-1] + " "
            continue
        if current.strip():
            commands.append(current.strip())
        current = ""
    return commands


def test_the_tour_is_extracted_whole() -> None:
    commands = tour_commands(README.read_text())
    assert len(commands) >= 10 and all(c.startswith("suite ") for c in commands)
    assert not any("..." in c for c in commands)  # every command runs as written


def test_the_cli_tour_runs_top_to_bottom_from_an_empty_folder(tmp_path: Path, data_dir: Path) -> None:
    env = dict(os.environ, RECSUITE_DATA_DIR=str(data_dir), PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    work = tmp_path / "tour"
    work.mkdir()
    for command in tour_commands(README.read_text()):
        done = subprocess.run(["bash", "-c", command], cwd=work, env=env, capture_output=True, text=True, timeout=300)
        allowed = (0, 1) if command.startswith(MAY_FAIL) else (0,)
        assert done.returncode in allowed, f"{command}\nexit {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        assert "Traceback" not in done.stderr, f"{command}\n{done.stderr[-2000:]}"
        if command.startswith("suite check "):
            assert re.search(r"^(PASS|FAIL): \d+ run folder\(s\) checked", done.stdout, re.M), done.stdout
    # What the tour says it makes is there.
    assert (work / "results/imported/dlrm-rmc1/Offline/accuracy/accuracy.txt").read_text().splitlines()[-1] == "result=PASS"
    assert (work / "results/tuned/dlrm-rmc1/tune/tuned.json").is_file()
    assert (work / "results/tuned/dlrm-rmc1/Server/performance/run_1/result.json").is_file()
    assert (work / "comparison/report.html").is_file()


def repo_paths(text: str) -> set[str]:
    """Every path in ``text`` whose first component is one of the repository's folders, with shell
    braces expanded (``part{1,2}.txt``) and trailing punctuation dropped."""
    found = set()
    pattern = r"(?<![\w./~$-])((?:" + "|".join(re.escape(d) for d in REPO_DIRS) + r")/(?:\{[^{}]*\}|[^\s`'\"()\[\],;{}])*)"
    for match in re.finditer(pattern, text):
        path = match.group(1).rstrip(".:")
        found.update(_braces(path))
    return found


def _braces(path: str) -> list[str]:
    parts = re.split(r"\{([^{}]*)\}", path)
    options = [[p] if i % 2 == 0 else p.split(",") for i, p in enumerate(parts)]
    return ["".join(choice) for choice in itertools.product(*options)]


#: Docs the README may link before they exist (none now: every linked doc is checked).
PENDING_DOCS: set[str] = set()
DOCS = ["README.md", *sorted(str(p.relative_to(REPO)) for p in (REPO / "docs").glob("*.md")), "benchmarks/results/README.md"]


def test_the_readme_is_a_front_page() -> None:
    text = README.read_text()
    assert len(text.splitlines()) <= 250
    for heading in ("## Two commands", "## CLI tour", "## Where to change what", "## Glossary", "## Developer loop", "## Docs"):
        assert f"\n{heading}\n" in text
    assert "../shared" not in text and "shared/" not in text


@pytest.mark.parametrize("doc", DOCS)
def test_the_readme_names_only_files_the_repository_has(doc: str) -> None:
    paths = repo_paths((REPO / doc).read_text())
    if doc == "README.md":
        assert "tests/test_readme_tour.py" in paths and "benchmarks/results/gpu_h200_part2.json" in paths
    assert not any(p.startswith(("shared/", "../shared")) for p in paths)
    missing = []
    for named in sorted(paths - PENDING_DOCS):
        # `file.py::name` names something in the file: the file must exist and hold the name.
        path, _, name = named.partition("::")
        if name and (REPO / path).is_file():
            if name.split("[")[0].split(".")[-1] not in (REPO / path).read_text():
                missing.append(named)
            continue
        pattern = re.sub(r"<[^>]*>", "*", path).rstrip("/")
        if not any(REPO.glob(pattern)) if "*" in pattern else not (REPO / pattern).exists():
            missing.append(named)
    assert missing == []


def test_the_path_finder_catches_what_a_clone_lacks() -> None:
    text = "see `shared/reference/deeprecsys.md` and benchmarks/results/gpu_h200_part{1,2}.txt, or `rules/<name>.toml`."
    assert repo_paths(text) == {
        "shared/reference/deeprecsys.md",
        "benchmarks/results/gpu_h200_part1.txt",
        "benchmarks/results/gpu_h200_part2.txt",
        "rules/<name>.toml",
    }


def test_the_rule_ids_doc_lists_the_catalogue() -> None:
    """docs/rules.md's rule table names exactly the rules ``suite check`` can report."""
    from suite.check import RULES

    text = (REPO / "docs" / "rules.md").read_text()
    text = text[text.index("\n## Rule ids\n"):]
    text = text[: text.index("\n## ", 1)]
    listed = set(re.findall(r"^\| `([a-z0-9.-]+)` \|", text, re.M))
    assert listed == set(RULES)
