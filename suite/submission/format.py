"""One MLPerf submission format as data: what a submission tree of one round holds.

Every field is read by the tree checks (``suite.check.submission_tree``) and by ``suite submit``;
one instance per MLPerf round lives in its own module (``mlperf_v5_1.py``), named by the rule set
it goes with (see ``suite.submission``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, kw_only=True)
class SubmissionFormat:
    """A round's submission tree: folders, exact file sets, system and measurements fields, CSV.

    Attributes:
        version: the round (``v5.1``): the summary CSV's ``version`` column.
        divisions: the division folders ``submit`` may write.
        statuses, system_types: the values a ``systems/<system>.json`` may hold.
        org_folders: what ``<division>/<Org>/`` holds.
        code_dir: the org folder of each benchmark's code README (v5.1 ``code``, v6.0 ``src``).
        results_hold_audits: True where the audits and the measurements sit in the scenario's results
            folder (v6.0: ``results/<system>/<benchmark>/<Scenario>/{TEST08,measurements.json}``),
            False where they have their own trees (v5.1: ``compliance/...``, ``measurements/...``).
        measurements_name: the measurements JSON's file name; ``{system}`` is the system's name.
        scenario_extras: files a scenario's results folder holds beside ``performance/``,
            ``accuracy/`` and (where ``results_hold_audits``) its audit folders.
        system_fields: every key a ``systems/<system>.json`` must have.
        system_meaningful_fields: the keys that must also be non-empty.
        measurement_fields, measurement_files: a ``measurements/.../<Scenario>/`` folder's JSON keys and files.
        performance_set, performance_optional, accuracy_set, tolerated: a run folder's exact file set.
        audit_sets, audit_optional: each compliance audit's files, relative to its folder.
        file_size_limit_bytes, max_accuracy_log_bytes: size limits.
        csv_columns, csv_quoted: the summary CSV's columns and the ones quoted.
        checked_divisions: the division folders ``check`` reads (``network`` too: ``submit`` writes none).
        root_allowed_suffixes, root_ignored_dirs: what may sit beside the division folders.
        network_fields: the systems JSON keys a system over the network must have.
        network_sut_substring: what a network system's LoadGen ``sut_name`` must contain.
        power_files, power_run_files, power_measurement_patterns: a power measurement's files:
            ``performance/power/``, the extra file of ``performance/{ranging,run_1}/``, and the
            measurements folder's (or a parent's, up to the org) file-name patterns.
    """

    version: str
    divisions: tuple[str, ...]
    statuses: tuple[str, ...]
    system_types: tuple[str, ...]
    org_folders: tuple[str, ...]
    code_dir: str
    results_hold_audits: bool
    measurements_name: str
    scenario_extras: frozenset[str]
    system_fields: tuple[str, ...]
    system_meaningful_fields: tuple[str, ...]
    measurement_fields: tuple[str, ...]
    measurement_files: tuple[str, ...]
    performance_set: frozenset[str]
    performance_optional: frozenset[str]
    accuracy_set: frozenset[str]
    tolerated: frozenset[str]
    audit_sets: dict[str, frozenset[str]]
    audit_optional: frozenset[str]
    file_size_limit_bytes: int
    max_accuracy_log_bytes: int
    csv_columns: tuple[str, ...]
    csv_quoted: frozenset[str]
    checked_divisions: tuple[str, ...]
    root_allowed_suffixes: tuple[str, ...]
    root_ignored_dirs: tuple[str, ...]
    network_fields: tuple[str, ...]
    network_sut_substring: str
    power_files: frozenset[str]
    power_run_files: frozenset[str]
    power_measurement_patterns: tuple[str, ...]

    def compliance_dir(self, org: Path, system: str, benchmark: str, scenario: str) -> Path:
        """The folder holding a scenario's audit folders (``TEST0x/``) in the ``<division>/<Org>`` folder ``org``."""
        return org / ("results" if self.results_hold_audits else "compliance") / system / benchmark / scenario

    def measurements_dir(self, org: Path, system: str, benchmark: str, scenario: str) -> Path:
        """The folder holding a scenario's measurements JSON, ``user.conf`` and ``README.md``."""
        return org / ("results" if self.results_hold_audits else "measurements") / system / benchmark / scenario

    def measurements_file(self, system: str) -> str:
        """The measurements JSON's name for ``system``."""
        return self.measurements_name.format(system=system)
