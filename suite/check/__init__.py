"""``suite check``: judge result folders by the rule tables; findings are data.

A PATH is a run folder (``.../<Scenario>/performance/run_1`` or ``.../<Scenario>/accuracy``), a
results tree (``<output>/<system>/<model>/<Scenario>/...``) or a submission tree in MLPerf's
layout (``closed/<Org>/results/<system>/<benchmark>/<Scenario>/...``, compliance under
``closed/<Org>/compliance/<system>/<benchmark>/<Scenario>/TEST01``; v6.0's dlrm-v3 keeps TEST08 in
the scenario's results folder). Every check is a pure
function from what a run wrote (plus the dataset's labels) and its rule table to a list of
:class:`Finding`; nothing here raises on bad input, it reports it.

Rule ids are stable (tests and scripts match on them); :data:`RULES` lists them with what they mean.
A run is judged by the rule set, variant and profile its ``config.json`` records, unless
``--rules`` / ``--profile`` say otherwise; a run without one (a submission tree) by the rule set
whose benchmark names include its benchmark folder, under the ``official`` profile.

The package, bottom up (no module imports one above it):

- ``catalogue``: :data:`RULES`, :class:`Finding`, :class:`CheckReport`;
- ``reading``: one run folder read once, and the rules (:class:`Judge`) it is held to;
- ``accuracy``: the AUC line, the hash, the AUC recomputed, the gate, truncated logs (v6.0's
  dlrm-v3: NE, accuracy and group AUC);
- ``runs``: every check of one run folder;
- ``compliance``: both runs per scenario, required scenarios, the audits re-verified (TEST08 too);
- ``submission_tree``: MLPerf's tree rules, by the round's format (``suite.submission``);
- ``render``: the report as text.

Discovery (:class:`RunFolder`, :func:`discover`) is ``suite.tree``, below all of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from suite.check.catalogue import RULES, START_FROM_DEVICE, CheckReport, Finding, Severity, error, record_findings
from suite.check.compliance import check_compliance, check_scenarios
from suite.check.reading import Judge, RunContext, expected_settings, judge_for, read_accuracy_txt, read_run
from suite.check.render import table
from suite.check.runs import run_findings
from suite.check.submission_tree import check_root, check_tree
from suite.submission import for_rules
from suite.tree import RunFolder, discover, org_dirs, run_folder

__all__ = [
    "RULES",
    "START_FROM_DEVICE",
    "CheckReport",
    "Finding",
    "Judge",
    "RunContext",
    "RunFolder",
    "Severity",
    "check",
    "check_compliance",
    "check_root",
    "check_scenarios",
    "check_tree",
    "discover",
    "error",
    "expected_settings",
    "judge_for",
    "read_accuracy_txt",
    "read_run",
    "record_findings",
    "run_findings",
    "table",
]  # fmt: skip


def check(paths: Iterable[Path], *, rules: str | None = None, profile: str | None = None) -> CheckReport:
    """Check every run folder at or under ``paths``.

    A PATH that is itself a run folder gets the run's checks; a tree also gets the scenario and
    benchmark checks (both runs per scenario, required scenarios, compliance audits), and a
    submission tree MLPerf's tree rules (``suite.submission``: file sets, systems JSON...).
    """
    report = CheckReport()
    for root in paths:
        runs = discover(root)
        if not runs:
            report.findings.append(error("structure.not-a-result", "no run folder (<Scenario>/performance/run_N or <Scenario>/accuracy) here", root))
            continue
        judges: dict[Path, Judge | None] = {}
        for run in runs:
            report.runs.append(run.path)
            findings, judges[run.path] = run_findings(run, rules, profile)
            report.findings += findings
        if run_folder(root) is None:
            report.findings += check_scenarios(runs, judges)
            fmt = for_rules(None)
            orgs = org_dirs(root, fmt.checked_divisions)
            for sub_root in sorted({org.parent.parent for org in orgs}):
                report.findings += check_root(sub_root, fmt)
            for org in orgs:
                report.findings += check_tree(org)
    return report
