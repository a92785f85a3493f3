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


def line(folder: Path) -> dict[str, Any]:
    """The figures of one run's result.json (the keys missing from a failed run left out)."""
    d = json.loads((folder / "result.json").read_text())
    perf, backend, harness = d.get("performance") or {}, d.get("backend") or {}, d.get("harness") or {}
    fused = (backend.get("extra") or backend).get("fused") or {}
    acc = d.get("accuracy") or {}
    return {"run": str(folder), "status": d.get("status"), "metric": (perf.get("metric") or {}).get("value"),
            "validity": perf.get("validity"), "p99_ms": ((perf.get("latency_ns") or {}).get("99.00") or 0) / 1e6,
            "mean_batch": round(harness.get("mean_batch_items", 0), 2), "tile": fused.get("tile"),
            "attention": fused.get("attention"),
            **({k: acc.get(k) for k in ("ne", "accuracy", "gauc", "reference", "passed")} if acc else {})}


def main() -> None:
    for arg in sys.argv[1:]:
        try:
            print(json.dumps(line(Path(arg))), flush=True)
        except (OSError, ValueError) as exc:
            print(json.dumps({"run": arg, "error": f"{type(exc).__name__}: {exc}"[:300]}), flush=True)


if __name__ == "__main__":
    main()
