"""MLPerf inference v6.0's submission format, for the ``mlperf-v6.0`` rule set (dlrm-v3).

The v6.0 checker (``tools/submission/submission_checker/constants.py``, the ``*_PATH`` tables'
"v6.0" entries) moved three things against v5.1 (:mod:`suite.submission.mlperf_v5_1`):

* compliance audits sit in the scenario's results folder, ``results/<system>/<benchmark>/<Scenario>/TEST08/``
  (v5.1: ``compliance/<system>/<benchmark>/<Scenario>/TEST01/``);
* the measurements file is ``results/<system>/<benchmark>/<Scenario>/measurements.json``, with
  ``user.conf``, ``mlperf.conf`` and ``README.md`` beside it (v5.1: ``measurements/<system>/<benchmark>/<Scenario>/<system>.json``);
* the code folder is ``src/`` (v5.1: ``code/``).

dlrm-v3's audit is TEST08 (TEST08_ACC_PATH): the verdict and the sampled accuracy log, as
``compliance/TEST08/run_verification.py`` leaves them; the audit's LoadGen logs may join it.
Everything else is v5.1's.
"""

from __future__ import annotations

import dataclasses

from suite.results import ACCURACY_LOG, DETAIL, SUMMARY
from suite.submission.mlperf_v5_1 import FORMAT as _V51

FORMAT = dataclasses.replace(
    _V51,
    version="v6.0",
    org_folders=("src", "systems", "results", "documentation"),
    code_dir="src",
    results_hold_audits=True,
    measurements_name="measurements.json",
    scenario_extras=frozenset({"measurements.json", "user.conf", "mlperf.conf", "README.md"}),
    audit_sets={**_V51.audit_sets, "TEST08": frozenset({"verify_accuracy.txt", f"accuracy/{ACCURACY_LOG}"})},
    audit_optional=_V51.audit_optional
    | frozenset({f"performance/run_1/{DETAIL}", f"performance/run_1/{SUMMARY}", "accuracy/accuracy.txt"}),
)
