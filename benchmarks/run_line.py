"""One JSON line of a result folder's figures, for the device scripts' logs (runs.jsonl): status,
the metric and its validity, p99, the mean batch, the attention kernel and its tile, and the
accuracy figures where the run had them.

    python benchmarks/run_line.py RESULT_DIR [RESULT_DIR ...]

A folder without a readable result.json prints one line saying so (the run failed or timed out).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from suite.errors import RecordError
from suite.record import read_result


def line(folder: Path) -> dict[str, Any]:
    """The figures of one run's result.json (:func:`suite.record.read_result`; what a failed run
    lacks is None). The fused kernels' description and dlrm-v3's accuracy figures (NE, group AUC,
    the teacher's) are backend- and model-specific keys, kept in the sections' ``extra``."""
    r = read_result(folder / "result.json")
    perf, harness, acc = r.performance, r.harness, r.accuracy
    fused = (r.backend.extra if r.backend is not None else {}).get("fused") or {}
    p99 = perf.latency_ns.get("99.00") if perf is not None else None
    return {"run": str(folder), "status": r.status,
            "metric": perf.metric.value if perf is not None and perf.metric is not None else None,
            "validity": perf.validity if perf is not None else None, "p99_ms": (p99 or 0) / 1e6,
            "mean_batch": round(harness.mean_batch_items or 0, 2) if harness is not None else 0,
            "tile": fused.get("tile"), "attention": fused.get("attention"),
            **({"accuracy": acc.accuracy, "passed": acc.passed,
                **{k: acc.extra.get(k) for k in ("ne", "gauc", "reference")}} if acc is not None else {})}


def main() -> None:
    for arg in sys.argv[1:]:
        try:
            print(json.dumps(line(Path(arg))), flush=True)
        except RecordError as exc:
            print(json.dumps({"run": arg, "error": str(exc)[:300]}), flush=True)


if __name__ == "__main__":
    main()
