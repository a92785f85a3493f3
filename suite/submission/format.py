"""One MLPerf submission format as data: what a submission tree of one round holds.

Every field is read by the tree checks (``suite.check.submission_tree``) and by ``suite submit``;
one instance per MLPerf round lives in its own module (``mlperf_v5_1.py``), named by the rule set
it goes with (see ``suite.submission``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class SubmissionFormat:
    """A round's submission tree: folders, exact file sets, system and measurements fields, CSV.

    Attributes:
        version: the round (``v5.1``): the summary CSV's ``version`` column.
        divisions: the division folders ``submit`` may write.
        statuses, system_types: the values a ``systems/<system>.json`` may hold.
        org_folders: what ``<division>/<Org>/`` holds.
        system_fields: every key a ``systems/<system>.json`` must have.
        system_meaningful_fields: the keys that must also be non-empty.
        measurement_fields, measurement_files: a ``measurements/.../<Scenario>/`` folder's JSON keys and files.
        performance_set, performance_optional, accuracy_set, tolerated: a run folder's exact file set.
        audit_sets, audit_optional: each compliance audit's files, relative to its folder.
        file_size_limit_bytes, max_accuracy_log_bytes: size limits.
        csv_columns, csv_quoted: the summary CSV's columns and the ones quoted.
    """

    version: str
    divisions: tuple[str, ...]
    statuses: tuple[str, ...]
    system_types: tuple[str, ...]
    org_folders: tuple[str, ...]
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
