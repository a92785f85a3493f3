"""The bottom layer of result trees: where the runs are and what their place in the tree says.

A results tree is ``<output>/<system>/<model>/<Scenario>/{performance/run_N,accuracy}``; a
submission tree is MLPerf's ``<division>/<Org>/results/<system>/<benchmark>/<Scenario>/...``. This
module finds the run folders (:func:`discover`) and names their kind (:class:`RunFolder`); the one
bounded reader of their files and the typed run record are :mod:`suite.record`. ``check``,
``compare`` and ``submit`` build on these two and import nothing from each other for it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from suite.config import Mode

#: The division folders of a submission tree.
DIVISIONS = ("closed", "open", "network")


AUDIT_RE = re.compile(r"^TEST\d\d$")


@dataclass(frozen=True)
class RunFolder:
    """A run folder found under a PATH, with what its place in the tree says."""

    path: Path
    mode: Mode
    #: Folder names: ``<system>/<benchmark>/<Scenario>``.
    system: str
    benchmark: str
    scenario: str
    submission: bool

    @property
    def scenario_dir(self) -> Path:
        return self.path.parent.parent if self.mode is Mode.PERFORMANCE else self.path.parent

    @property
    def tree_root(self) -> Path:
        """The results tree (or a submission's ``results/``) the run sits in: where a symlink may lead."""
        return self.scenario_dir.parent.parent.parent

    @property
    def org_dir(self) -> Path:
        """A submission run's ``<division>/<org>`` (``<org>/results/<system>/<benchmark>/<Scenario>``)."""
        return self.scenario_dir.parent.parent.parent.parent

    def compliance_dir(self, test: str) -> Path:
        """Where the scenario's audit lives: beside the runs, or where the submission format of the
        benchmark's rule set puts it (v5.1: ``compliance/...``; v6.0: the scenario's results folder)."""
        if self.submission:
            from suite.rules import for_benchmark
            from suite.submission import for_rules

            fmt = for_rules(for_benchmark(self.benchmark))
            return fmt.compliance_dir(self.org_dir, self.system, self.benchmark, self.scenario) / test
        return self.scenario_dir / test


def _run_kind(path: Path) -> Mode | None:
    if path.name == "accuracy":
        return Mode.ACCURACY
    if path.name.startswith("run_") and path.parent.name == "performance":
        return Mode.PERFORMANCE
    return None


def run_folder(path: Path) -> RunFolder | None:
    """``path`` as a run folder, or ``None`` (not one, or an audit's run: checked with its scenario)."""
    mode = _run_kind(path)
    if mode is None:
        return None
    scen_dir = path.parent.parent if mode is Mode.PERFORMANCE else path.parent
    if AUDIT_RE.match(scen_dir.name):
        return None  # an audit's runs: checked with their scenario (check_compliance)
    bench_dir = scen_dir.parent
    system_dir = bench_dir.parent
    submission = system_dir.parent.name == "results" and system_dir.parent.parent.parent.name in DIVISIONS
    return RunFolder(
        path=path,
        mode=mode,
        system=system_dir.name,
        benchmark=bench_dir.name,
        scenario=scen_dir.name,
        submission=submission,
    )


def discover(root: Path) -> list[RunFolder]:
    """The run folders at or under ``root`` (audit folders excluded: they are checked with their scenario)."""
    own = run_folder(root)
    if own is not None:
        return [own]
    found = []
    if root.is_dir():
        for candidate in sorted(root.rglob("*")):
            if candidate.is_dir() and (run := run_folder(candidate)) is not None:
                found.append(run)
    return found


def org_dirs(root: Path, divisions: tuple[str, ...] = ("closed", "open")) -> list[Path]:
    """The ``<division>/<Org>`` folders at or under ``root`` (a submission root, a division or an org)."""
    if root.parent.name in divisions and (root / "results").is_dir():
        return [root]
    found = []
    for division in [root] if root.name in divisions else [root / d for d in divisions]:
        if division.is_dir():
            found += sorted(p for p in division.iterdir() if p.is_dir() and not p.is_symlink())
    return found
