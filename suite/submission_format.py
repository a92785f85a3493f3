"""Where things go in an MLPerf inference submission tree, per round: v5.1's and v6.0's layouts as data.

The v6.0 checker (``tools/submission/submission_checker/constants.py``, the ``*_PATH`` tables'
"v6.0" entries) moved three things against v5.1:

* compliance audits sit in the scenario's results folder, ``results/<system>/<benchmark>/<Scenario>/TEST08/``
  (v5.1: ``compliance/<system>/<benchmark>/<Scenario>/TEST01/``);
* the measurements file is ``results/<system>/<benchmark>/<Scenario>/measurements.json``, with
  ``user.conf``, ``mlperf.conf`` and ``README.md`` beside it (v5.1: ``measurements/<system>/<benchmark>/<Scenario>/<system>.json``);
* the code folder is ``src/`` (v5.1: ``code/``).

``suite submit`` builds the layout its rule set names (``submission_format`` in the rule table's
meta; v5.1 without one) and ``suite check`` tells a tree's layout by its code folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from suite.results import ACCURACY_LOG, DETAIL, SUMMARY


@dataclass(frozen=True)
class Layout:
    """One round's submission layout."""

    version: str
    #: The folder of each benchmark's code README (``code`` / ``src``).
    code_dir: str
    #: Folders an ``<Org>`` folder may hold.
    org_folders: tuple[str, ...]
    #: True: audits and measurements live in the scenario's results folder.
    in_results: bool
    #: The measurements JSON's name; ``{system}`` is replaced.
    measurements_name: str

    def compliance_dir(self, org: Path, system: str, bench: str, scenario: str) -> Path:
        """The folder holding a scenario's audit folders (``TEST0x/``)."""
        base = org / "results" if self.in_results else org / "compliance"
        return base / system / bench / scenario

    def measurements_dir(self, org: Path, system: str, bench: str, scenario: str) -> Path:
        """The folder holding a scenario's measurements JSON, user.conf and README.md."""
        base = org / "results" if self.in_results else org / "measurements"
        return base / system / bench / scenario

    def measurements_file(self, system: str) -> str:
        return self.measurements_name.format(system=system)

    @property
    def scenario_extras(self) -> frozenset[str]:
        """Files a v6.0 scenario folder holds beside performance/, accuracy/ and its audits."""
        return frozenset({"measurements.json", "user.conf", "mlperf.conf", "README.md"}) if self.in_results else frozenset()


V51 = Layout("v5.1", "code", ("code", "systems", "results", "measurements", "compliance", "documentation"), False, "{system}.json")
V60 = Layout("v6.0", "src", ("src", "systems", "results", "documentation"), True, "measurements.json")
LAYOUTS: dict[str, Layout] = {"v5.1": V51, "v6.0": V60}

#: TEST08's folder as the v6.0 checker reads it (TEST08_ACC_PATH) and run_verification.py leaves
#: it: the verdict and the sampled accuracy log; the audit's LoadGen logs may join it.
TEST08_SET = frozenset({"verify_accuracy.txt", f"accuracy/{ACCURACY_LOG}"})
TEST08_OPTIONAL = frozenset({f"performance/run_1/{DETAIL}", f"performance/run_1/{SUMMARY}", "accuracy/accuracy.txt"})


def for_rules(meta_format: object) -> Layout:
    """The layout a rule table's ``submission_format`` names (v5.1 when it names none)."""
    return LAYOUTS.get(str(meta_format), V51) if meta_format is not None else V51


def detect(org: Path) -> Layout:
    """The layout of a built ``<division>/<Org>`` folder: v6.0's has ``src/``, v5.1's ``code/``."""
    return V60 if (org / V60.code_dir).is_dir() and not (org / V51.code_dir).is_dir() else V51
