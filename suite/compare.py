"""``suite compare``: results trees and submission trees side by side, by system and vendor.

Every performance run under the PATHs becomes one row of a pandas DataFrame (:data:`COLUMNS`),
joined with its scenario's accuracy run and, where measured, its ``power.json``. Invalid results
stay in the table, marked, and are drawn hatched in the plots: nothing is dropped.

Outputs (in ``--out``): ``comparison.csv``, ``report.html`` and its PNGs (throughput per model per
system on a log scale, speedup over the baseline system, samples per joule, latency against load
where a system has several Server runs of a model); the Markdown table is returned for the terminal.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from suite.check import RunFolder, discover, read_accuracy_txt
from suite.config import Mode, Scenario
from suite.errors import ConfigError, UnknownNameError
from suite.results import DETAIL, number, performance, read_detail

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = (
    "system", "vendor", "accelerator", "backend", "precision", "model", "scenario", "throughput", "units",
    "p99_latency_ms", "accuracy_auc", "power_w", "power_source", "samples_per_j", "valid", "status", "source",
)  # fmt: skip
#: Words in a processor or accelerator name that give away its vendor (first match wins).
VENDORS = (
    ("NVIDIA", ("nvidia", "geforce", "tesla", "quadro", "h100", "h200", "a100", "l40", "gh200", "grace")),
    ("AMD", ("amd", "epyc", "ryzen", "instinct", "radeon", "mi300", "mi325")),
    ("Intel", ("intel", "xeon", "gaudi", "core(tm)")),
    ("Apple", ("apple",)),
    ("Arm", ("neoverse", "graviton", "ampere", "arm")),
)


def vendor_of(name: str) -> str:
    """The vendor a processor or accelerator name gives away, or ``unknown``."""
    low = name.lower()
    for vendor, words in VENDORS:
        if any(w in low for w in words):
            return vendor
    return "unknown"


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _reported_auc(path: Path) -> float | None:
    """The AUC of accuracy.txt's first line, MLPerf's ``AUC=<percent>%``; None without one."""
    return read_accuracy_txt(path)[0] if path.is_file() else None


def _system_json(run: RunFolder) -> dict[str, Any]:
    """A submission run's ``systems/<system>.json`` (``results/<sys>/...`` -> ``<org>/systems``)."""
    return _json(run.org_dir / "systems" / f"{run.system}.json")


def _row(run: RunFolder, accuracy: RunFolder | None) -> dict[str, Any]:
    result = _json(run.path / "result.json")
    config = _json(run.path / "config.json")
    detail = read_detail(run.path / DETAIL) if (run.path / DETAIL).is_file() else None
    get = detail.get if detail is not None else (lambda key, default=None: default)
    scenario = run.scenario
    # The scenario's LoadGen metric, as result.json records it; a stream scenario's is a latency.
    known = detail is not None and scenario in {s.value for s in Scenario}
    metric = performance(detail, Scenario(scenario))["metric"] if known else {}  # type: ignore[arg-type]
    value = number(metric.get("value"))
    if metric.get("units") == "ns":
        throughput, units = (1e9 / value if value else None), "queries/s (1/latency)"
    else:
        throughput, units = value, "samples/s" if scenario == "Offline" else "queries/s"
    p99 = number(get("result_99.00_percentile_latency_ns"))
    backend = result.get("backend") or {}
    cfg = result.get("config") or config.get("config") or {}
    env = result.get("environment") or config.get("environment") or {}
    if run.submission:
        system = _system_json(run)
        accel = str(system.get("accelerator_model_name") or "N/A")
        cpu = str(system.get("host_processor_model_name") or "")
        accelerator = cpu if accel in ("N/A", "", "0") else accel
        org = run.org_dir.name
        backend_name = str(system.get("framework") or "")
        precision = ""
        measurements = run.org_dir / "measurements" / run.system / run.benchmark / scenario
        for path in sorted(measurements.glob("*.json")):
            precision = str(_json(path).get("weight_data_types") or "")
        vendor = vendor_of(accelerator)
        model = run.benchmark
        source = f"submission ({org})"
    else:
        device = str(backend.get("device") or "")
        on_cpu = device.lower() in ("", "cpu", "none") or device.lower().startswith("cpu")
        accelerator = str(env.get("cpu") or "CPU") if on_cpu else device
        backend_name = str(backend.get("name") or cfg.get("backend") or "")
        precision = str(backend.get("precision") or cfg.get("precision") or "")
        vendor = vendor_of(accelerator)
        model = str(result.get("benchmark") or config.get("benchmark") or run.benchmark)
        source = "results"
    auc = None
    if accuracy is not None:
        acc_result = _json(accuracy.path / "result.json")
        auc = number((acc_result.get("accuracy") or {}).get("auc"))
        auc = 100 * auc if auc is not None else _reported_auc(accuracy.path / "accuracy.txt")
    power = _json(run.path / "power.json") or (result.get("power") or {})
    validity = get("result_validity")
    errors = list(result.get("errors") or []) + (detail.errors if detail is not None else [])
    valid = validity == "VALID" and not errors
    status = "VALID" if valid else f"INVALID{': ' + errors[0] if errors else ''}"
    if result.get("status") == "interrupted":
        # What LoadGen computed over the empty answers after the signal is no measurement.
        valid, throughput, p99 = False, None, None
        stop = result.get("interrupted") if isinstance(result.get("interrupted"), dict) else {}
        status = f"INTERRUPTED ({stop.get('signal', 'signal')})"
    elif accuracy is None:
        status += " (no accuracy run)"
    return {
        "system": run.system,
        "vendor": vendor,
        "accelerator": accelerator,
        "backend": backend_name,
        "precision": precision,
        "model": model,
        "scenario": scenario,
        "throughput": throughput,
        "units": units,
        "p99_latency_ms": p99 / 1e6 if p99 is not None else None,
        "accuracy_auc": auc,
        "power_w": number(power.get("average_w")),
        "power_source": power.get("measured", "not measured" if not power else None) or "not measured",
        "samples_per_j": number(power.get("samples_per_j")),
        "valid": bool(valid),
        "status": status,
        "source": str(run.path),
        "_target_qps": number(get("effective_target_qps")),
    }


def load(paths: Iterable[Path]) -> pd.DataFrame:
    """One row per performance run under ``paths`` (results trees and submission trees alike)."""
    import pandas as pd

    rows = []
    for root in paths:
        if not root.exists():
            raise ConfigError(f"'path' {str(root)!r} does not exist")
        runs = discover(root)
        if not runs:
            raise ConfigError(f"no run folder (<Scenario>/performance/run_N or <Scenario>/accuracy) under {root}")
        accuracy = {r.scenario_dir: r for r in runs if r.mode is Mode.ACCURACY}
        for run in runs:
            if run.mode is Mode.PERFORMANCE:
                rows.append(_row(run, accuracy.get(run.scenario_dir)))
    frame = pd.DataFrame(rows, columns=[*COLUMNS, "_target_qps"])
    return frame.sort_values(["model", "scenario", "system"], kind="stable").reset_index(drop=True)


def with_speedup(frame: pd.DataFrame, baseline: str | None) -> tuple[pd.DataFrame, str]:
    """``frame`` with ``speedup`` over ``baseline`` (default: the first system) per model and scenario.

    The baseline's figure is its best valid run (its best run if none is valid); a model the
    baseline did not run gets no speedup.
    """
    systems = list(dict.fromkeys(frame["system"]))
    if not systems:
        raise ConfigError("nothing to compare: no performance run under the paths")
    if baseline is None:
        baseline = systems[0]
    elif baseline not in systems:
        raise UnknownNameError("baseline", baseline, systems)
    best = _best(frame[frame["system"] == baseline])
    ref = {(r.model, r.scenario): r.throughput for r in best.itertuples()}
    out = frame.copy()
    out["speedup"] = [
        (row.throughput / ref[(row.model, row.scenario)]) if ref.get((row.model, row.scenario)) and row.throughput is not None
        and not _nan(row.throughput) else None
        for row in frame.itertuples()
    ]  # fmt: skip
    return out, baseline


def _nan(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _best(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (system, model, scenario): the best valid run, else the best run (marked invalid)."""
    if frame.empty:
        return frame
    ranked = frame.assign(_t=frame["throughput"].fillna(-1.0)).sort_values(["valid", "_t"], ascending=[False, False], kind="stable")
    return ranked.drop_duplicates(["system", "model", "scenario"]).drop(columns="_t").sort_values(["model", "scenario", "system"])


def markdown(frame: pd.DataFrame) -> str:
    """A Markdown table of the comparison (written here: pandas' to_markdown needs tabulate)."""
    cols = ["system", "vendor", "accelerator", "backend", "precision", "model", "scenario", "throughput", "units",
            "p99_latency_ms", "accuracy_auc", "power_w", "samples_per_j", "speedup", "status"]  # fmt: skip
    cols = [c for c in cols if c in frame.columns]

    def cell(value: Any, col: str) -> str:
        if _nan(value):
            return "-"
        if isinstance(value, float):
            return f"{value:.2f}x" if col == "speedup" else f"{value:,.3f}" if abs(value) < 100 else f"{value:,.1f}"
        return str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join(" --- " for _ in cols) + "|"]
    for row in frame.to_dict("records"):
        lines.append("| " + " | ".join(cell(row[c], c) for c in cols) + " |")
    return "\n".join(lines)


@dataclass(frozen=True)
class Comparison:
    """What ``suite compare`` wrote."""

    frame: pd.DataFrame
    baseline: str
    csv: Path
    html: Path
    plots: tuple[Path, ...]
    markdown: str


def compare(paths: Sequence[Path], *, baseline: str | None = None, out: Path = Path("comparison")) -> Comparison:
    """Load ``paths``, write ``comparison.csv``, the plots and ``report.html`` into ``out``."""
    frame, baseline = with_speedup(load(paths), baseline)
    out.mkdir(parents=True, exist_ok=True)
    public = frame.drop(columns="_target_qps")
    csv = out / "comparison.csv"
    public.to_csv(csv, index=False)
    plots = _plots(frame, baseline, out)
    table = markdown(public)
    page = out / "report.html"
    page.write_text(_html(public, baseline, plots))
    return Comparison(public, baseline, csv, page, tuple(plots), table)


# Plots ----------------------------------------------------------------------------------------


def _bars(ax: Any, best: pd.DataFrame, value: str, systems: list[str], log: bool, colors: dict[str, str]) -> None:
    groups = list(dict.fromkeys(zip(best["model"], best["scenario"])))
    width = 0.8 / max(len(systems), 1)
    for i, system in enumerate(systems):
        mine = best[best["system"] == system]
        for row in mine.itertuples():
            y = getattr(row, value)
            if _nan(y) or (log and y <= 0):
                continue
            x = groups.index((row.model, row.scenario)) + (i - (len(systems) - 1) / 2) * width
            ax.bar(x, y, width, color=colors[system], hatch=None if row.valid else "//", edgecolor="black" if not row.valid else colors[system],
                   alpha=1.0 if row.valid else 0.55)  # fmt: skip
            if not row.valid:
                ax.text(x, y, "INVALID", rotation=90, ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(groups)), [f"{m}\n{s}" for m, s in groups])
    if log:
        ax.set_yscale("log")
    from matplotlib.patches import Patch

    handles = [Patch(color=colors[s], label=s) for s in systems]
    handles.append(Patch(facecolor="white", edgecolor="black", hatch="//", label="invalid"))
    ax.legend(handles=handles, fontsize=8)
    ax.grid(axis="y", alpha=0.3, which="both")


def _plots(frame: pd.DataFrame, baseline: str, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    best = _best(frame)
    systems = list(dict.fromkeys(frame["system"]))
    colors = {s: f"C{i % 10}" for i, s in enumerate(systems)}  # one color per system in every plot
    plots = []

    fig, ax = plt.subplots(figsize=(8, 4.5))
    _bars(ax, best, "throughput", systems, log=True, colors=colors)
    ax.set_ylabel("throughput (LoadGen samples/s, log scale)")
    ax.set_title("Throughput per model per system")
    plots.append(_save(fig, out / "throughput.png"))

    fig, ax = plt.subplots(figsize=(8, 4.5))
    _bars(ax, best, "speedup", systems, log=False, colors=colors)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_ylabel(f"speedup over {baseline} (x)")
    ax.set_title(f"Speedup over the baseline system {baseline}")
    plots.append(_save(fig, out / "speedup.png"))

    powered = best[best["samples_per_j"].notna()]
    if not powered.empty:
        fig, ax = plt.subplots(figsize=(8, 4.5))
        _bars(ax, powered, "samples_per_j", [s for s in systems if s in set(powered["system"])], log=False, colors=colors)
        ax.set_ylabel("samples per joule (measured component power)")
        ax.set_title("Energy efficiency: samples/J (" + ", ".join(sorted(set(powered["power_source"]))) + ")")
        plots.append(_save(fig, out / "samples_per_joule.png"))

    server = frame[(frame["scenario"] == "Server") & frame["p99_latency_ms"].notna() & frame["throughput"].notna()]
    sweeps = [key for key, grp in server.groupby(["system", "model"]) if grp["_target_qps"].nunique() >= 2]
    if sweeps:
        fig, ax = plt.subplots(figsize=(8, 4.5))
        for i, (system, model) in enumerate(sweeps):
            grp = server[(server["system"] == system) & (server["model"] == model)].sort_values("throughput")
            ax.plot(grp["throughput"], grp["p99_latency_ms"], marker="o", color=f"C{i % 10}", label=f"{system} {model}")
            bad = grp[~grp["valid"]]
            ax.scatter(bad["throughput"], bad["p99_latency_ms"], marker="x", s=80, color="red", zorder=3)
        ax.scatter([], [], marker="x", color="red", label="invalid")
        ax.set_xlabel("completed queries/s")
        ax.set_ylabel("p99 latency (ms)")
        ax.set_title("Server: p99 latency against load")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        plots.append(_save(fig, out / "latency_vs_load.png"))
    return plots


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _html(frame: pd.DataFrame, baseline: str, plots: list[Path]) -> str:
    rows = []
    for row in frame.to_dict("records"):
        cls = "" if row["valid"] else ' class="invalid"'
        cells = "".join(f"<td>{html.escape('-' if _nan(v) else (f'{v:,.3f}' if isinstance(v, float) else str(v)))}</td>" for v in row.values())
        rows.append(f"<tr{cls}>{cells}</tr>")
    head = "".join(f"<th>{html.escape(c)}</th>" for c in frame.columns)
    images = "\n".join(f'<h2>{html.escape(p.stem.replace("_", " "))}</h2>\n<img src="{p.name}" alt="{p.stem}">' for p in plots)
    powered = frame["samples_per_j"].notna().any()
    note = "" if powered else "<p>No run measured power (run with <code>suite run --power</code>).</p>"
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>recsuite comparison</title>
<style>body{{font-family:sans-serif}} table{{border-collapse:collapse;font-size:12px}} td,th{{border:1px solid #ccc;padding:2px 6px}}
tr.invalid{{background:#fde2e2}}</style></head><body>
<h1>recsuite comparison</h1>
<p>Baseline system: <b>{html.escape(baseline)}</b>. Rows shaded red are INVALID (kept, never dropped). Power is component power
from software counters (GPU board via NVML, CPU package via RAPL), not wall power: not comparable with MLPerf power results.</p>
{note}
<table><tr>{head}</tr>
{chr(10).join(rows)}
</table>
{images}
</body></html>
"""
