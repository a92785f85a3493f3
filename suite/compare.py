"""``suite compare``: results trees and submission trees side by side, by system and vendor.

Every performance run under the PATHs becomes one row of a pandas DataFrame (:data:`COLUMNS`),
joined with its scenario's accuracy run and, where measured, its ``power.json``. Invalid results
stay in the table, marked with LoadGen's reasons, and are drawn hatched in the plots: nothing is
dropped. Speedups are taken only between like runs (:data:`LIKE`: same model, scenario, scale,
profile, precision and rule set); a row without a like baseline run says why in ``note``.

Outputs (in ``--out``): ``comparison.csv``, ``report.html`` and its PNGs (throughput per model per
system on a log scale, speedup over the baseline system, samples per joule, latency against load
where a system has several Server runs of a model); the Markdown table is returned for the terminal.

Size: this module is over 450 lines because it reads three kinds of tree (results, a submission, published CSVs) into one row type; the tree bottom layer (issue 13) will take the reading.
"""

from __future__ import annotations

import html
import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from suite import record, scenarios
from suite.check.reading import read_accuracy_txt
from suite.config import Mode
from suite.errors import ConfigError, RecordError, UnknownNameError
from suite.record import ConfigRecord, PowerRecord, ResultRecord
from suite.results import DETAIL, invalid_reasons, number, parse_detail, performance
from suite.tree import RunFolder, discover

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = (
    "system", "vendor", "accelerator", "nodes", "accelerators", "backend", "precision", "scale", "profile", "rules", "model", "scenario",
    "throughput", "units", "p99_latency_ms", "accuracy_auc", "power_w", "power_source", "samples_per_j", "valid",
    "status", "source",
)  # fmt: skip
#: The columns two runs must share for one's throughput to be a speedup over the other's: the same
#: work (model, scale, scenario), measured the same way (profile, rule set) in the same arithmetic.
LIKE = ("model", "scenario", "scale", "profile", "precision", "rules")
#: Where a submission's measurements README (written by ``suite submit``) names the rule set and profile.
_SUBMITTED_RULES = re.compile(r"Made with recsuite \(rules `([^`]*)`, variant `([^`]*)`, profile `([^`]*)`\)")
_SUBMITTED_SCALE = re.compile(r"\(scale ([^,)]+),")
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
    """A submission's own JSON (systems, measurements), read bounded; {} when absent or unreadable."""
    try:
        return record.read_object(path) if os.path.lexists(path) else {}
    except RecordError:
        return {}


_R = TypeVar("_R", ConfigRecord, ResultRecord, PowerRecord)


def _read(kind: type[_R], path: Path, root: Path, damage: list[str]) -> _R | None:
    """``path`` as a record; None when absent; a damaged file adds its first problem to ``damage``."""
    if not os.path.lexists(path):
        return None
    try:
        return kind.read(path, root=root)
    except RecordError as exc:
        damage.append(record.describe(exc, path.name)[0])
        return None


def _reported_auc(path: Path) -> float | None:
    """The AUC of accuracy.txt's first line, MLPerf's ``AUC=<percent>%``; None without one or unreadable."""
    try:
        return read_accuracy_txt(path)[0] if os.path.lexists(path) else None
    except RecordError:
        return None


def _system_json(run: RunFolder) -> dict[str, Any]:
    """A submission run's ``systems/<system>.json`` (``results/<sys>/...`` -> ``<org>/systems``)."""
    return _json(run.org_dir / "systems" / f"{run.system}.json")


def _row(run: RunFolder, accuracy: RunFolder | None) -> dict[str, Any]:
    """One performance run as a row; a damaged record or log makes a DAMAGED row, never an exception."""
    damage: list[str] = []
    root = run.tree_root
    result = _read(ResultRecord, run.path / "result.json", root, damage)
    config = _read(ConfigRecord, run.path / "config.json", root, damage)
    detail = None
    if os.path.lexists(run.path / DETAIL):
        try:
            detail = parse_detail(record.read_text(run.path / DETAIL, record.DETAIL_CAP_BYTES, root=root))
        except RecordError as exc:
            damage.append(record.describe(exc, DETAIL)[0])
    get = detail.get if detail is not None else (lambda key, default=None: default)
    # The scenario as the record (or, in a submission tree, LoadGen's detail log) names it; the
    # folder name only where neither does.
    cfg_rec = result.config if result is not None else config.config if config is not None else None
    named = cfg_rec.scenario if cfg_rec is not None else get("effective_scenario") or run.scenario
    row = scenarios.by_name(str(named))
    scenario = row.scenario.value if row is not None else run.scenario
    # The scenario's LoadGen metric, as result.json records it; a stream scenario's is a latency.
    metric = performance(detail, row.scenario)["metric"] if detail is not None and row is not None else {}
    value = number(metric.get("value"))
    units = row.compare_units if row is not None else "queries/s"
    throughput = (1e9 / value if value else None) if row is not None and row.latency_metric else value
    p99 = number(get("result_99.00_percentile_latency_ns"))
    backend = result.backend if result is not None else None
    cfg = result.config if result is not None else config.config if config is not None else None
    env = (result.environment if result is not None else None) or (config.environment if config is not None else None)
    if run.submission:
        system = _system_json(run)
        accel = str(system.get("accelerator_model_name") or "N/A")
        cpu = str(system.get("host_processor_model_name") or "")
        accelerator = cpu if accel in ("N/A", "", "0") else accel
        backend_name = str(system.get("framework") or "")
        precision = ""
        measurements = run.org_dir / "measurements" / run.system / run.benchmark / run.scenario
        for path in sorted(measurements.glob("*.json")):
            precision = str(_json(path).get("weight_data_types") or "")
        vendor = vendor_of(accelerator)
        model = run.benchmark
        scale, profile, rules = _submitted_like(run, measurements)
        nodes = _count(system.get("number_of_nodes"), 1)
        accelerators = 0 if accel in ("N/A", "", "0") else nodes * _count(system.get("accelerators_per_node"), 1)
    else:
        device = (backend.device if backend is not None else None) or ""
        on_cpu = device.lower() in ("", "cpu", "none") or device.lower().startswith("cpu")
        accelerator = ((env.cpu if env is not None else None) or "CPU") if on_cpu else device
        # Nodes and devices from the run's placement (a record without one: one node, one device).
        nodes, per_node = result.topology if result is not None else (1, 1)
        accelerators = 0 if on_cpu else nodes * per_node
        backend_name = (backend.name if backend is not None else None) or (cfg.backend if cfg is not None else None) or ""
        precision = (backend.precision if backend is not None else None) or (cfg.precision if cfg is not None else None) or ""
        vendor = vendor_of(accelerator)
        model = (result.benchmark if result is not None else None) or (config.benchmark if config is not None else None) or run.benchmark
        settings = (result.settings if result is not None else None) or (config.settings if config is not None else None)
        scale = (cfg.model.scale if cfg is not None else None) or ""
        profile = (settings.profile if settings is not None else None) or (cfg.profile if cfg is not None else None) or ""
        rules = _rules(
            (settings.rules if settings is not None else None) or (cfg.rules if cfg is not None else None),
            (settings.variant if settings is not None else None) or (cfg.variant if cfg is not None else None),
        )
    auc = None
    if accuracy is not None:
        acc_result = _read(ResultRecord, accuracy.path / "result.json", accuracy.tree_root, [])
        auc = acc_result.accuracy.auc if acc_result is not None and acc_result.accuracy is not None else None
        auc = 100 * auc if auc is not None else _reported_auc(accuracy.path / "accuracy.txt")
    power = _read(PowerRecord, run.path / "power.json", root, damage) or (result.power if result is not None else None)
    validity = get("result_validity")
    errors = list(result.errors if result is not None else ()) + (detail.errors if detail is not None else [])
    valid = validity == "VALID" and not errors and not damage
    if damage:
        status, throughput = f"DAMAGED: {damage[0]}", None
    elif result is not None and result.status == "interrupted":
        # What LoadGen computed over the empty answers after the signal is no measurement.
        valid, throughput, p99 = False, None, None
        status = f"INTERRUPTED ({result.interruption.get('signal', 'signal')})"
    else:
        # LoadGen's own reasons first (its validity checks and recommendation), then the run's errors.
        reasons = (invalid_reasons(performance(detail, row.scenario)) if detail is not None and row is not None and validity != "VALID" else []) + errors[:1]
        status = "VALID" if valid else "INVALID" + (f": {'; '.join(reasons)}" if reasons else "")
    return {
        "system": run.system,
        "vendor": vendor,
        "accelerator": accelerator,
        "nodes": nodes,
        "accelerators": accelerators,
        "backend": backend_name,
        "precision": precision,
        "scale": scale,
        "profile": profile,
        "rules": rules,
        "model": model,
        "scenario": scenario,
        "throughput": throughput,
        "units": units,
        "p99_latency_ms": p99 / 1e6 if p99 is not None else None,
        "accuracy_auc": auc,
        "power_w": power.average_w if power is not None else None,
        "power_source": (power.measured if power is not None else None) or "not measured",
        "samples_per_j": power.samples_per_j if power is not None else None,
        "valid": bool(valid),
        "status": status,
        "source": str(run.path),
        "_target_qps": number(get("effective_target_qps")),
        "_no_accuracy": accuracy is None,
    }


def _rules(name: Any, variant: Any) -> str:
    """``rule set/variant`` (``deeprecsys/medium``), the rule set alone without a variant."""
    return "" if not name else f"{name}/{variant}" if variant else str(name)


def _submitted_like(run: RunFolder, measurements: Path) -> tuple[str, str, str]:
    """(scale, profile, rule set) of a submission run, from what ``suite submit`` wrote into its
    measurements folder; empty where the tree does not say (another tool made it)."""
    scale = profile = rules = ""
    readme = measurements / "README.md"
    try:
        text = record.read_text(readme, record.TEXT_CAP_BYTES)[:4096] if readme.is_file() else ""
    except RecordError:
        text = ""
    if text:
        if m := _SUBMITTED_RULES.search(text):
            rules, profile = _rules(m.group(1), None if m.group(2) == "None" else m.group(2)), m.group(3)
    system = _json(measurements / f"{run.system}.json")
    if m := _SUBMITTED_SCALE.search(str(system.get("starting_weights_filename") or "")):
        scale = m.group(1)
    return scale, profile, rules


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
    frame = pd.DataFrame(rows, columns=[*COLUMNS, "_target_qps", "_no_accuracy"])
    return frame.sort_values(["model", "scenario", "system"], kind="stable").reset_index(drop=True)


def with_speedup(frame: pd.DataFrame, baseline: str | None) -> tuple[pd.DataFrame, str]:
    """``frame`` with ``speedup`` over ``baseline`` (default: the first system) and a ``note``.

    A speedup is taken only over a baseline run like the row's in every :data:`LIKE` column (model,
    scenario, scale, profile, precision, rule set): the baseline's best valid such run (its best
    run if none is valid). A row without one gets no speedup and a note that says what differs.
    """
    systems = list(dict.fromkeys(frame["system"]))
    if not systems:
        raise ConfigError("nothing to compare: no performance run under the paths")
    if baseline is None:
        baseline = systems[0]
    elif baseline not in systems:
        raise UnknownNameError("baseline", baseline, systems)
    best = _best(frame[frame["system"] == baseline])
    ref = {tuple(getattr(r, c) for c in LIKE): r.throughput for r in best.itertuples()}
    speedups: list[float | None] = []
    notes: list[str] = []
    for row in frame.to_dict("records"):
        base = ref.get(tuple(row[c] for c in LIKE))
        note = [] if base is not None else [_unlike(row, best, baseline)]
        if row["_no_accuracy"]:
            note.append("no accuracy run")
        ok = base is not None and base > 0 and not _nan(base) and not _nan(row["throughput"])
        speedups.append(row["throughput"] / base if ok else None)
        notes.append("; ".join(note))
    out = frame.copy()
    out["speedup"] = speedups
    out["note"] = notes
    return out, baseline


def _unlike(row: dict[str, Any], best: pd.DataFrame, baseline: str) -> str:
    """Why ``row`` has no speedup: the baseline ran no such model and scenario, or in what its
    nearest run of them differs."""
    same = best[(best["model"] == row["model"]) & (best["scenario"] == row["scenario"])]
    if same.empty:
        return f"no speedup: {baseline} has no {row['model']} {row['scenario']} run"
    other = same.iloc[0]
    differ = [f"{c} {other[c] or '?'} vs {row[c] or '?'}" for c in LIKE[2:] if other[c] != row[c]]
    return f"no speedup: unlike {baseline}'s run ({', '.join(differ)})"


def _nan(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _best(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (system, model, scenario): the best valid run, else the best run (marked invalid)."""
    if frame.empty:
        return frame
    ranked = frame.assign(_t=frame["throughput"].fillna(-1.0)).sort_values(["valid", "_t"], ascending=[False, False], kind="stable")
    return ranked.drop_duplicates(["system", *LIKE]).drop(columns="_t").sort_values(["model", "scenario", "system"])


def _count(value: Any, default: int) -> int:
    """A systems JSON count (a number or a numeric string), or ``default``."""
    try:
        return max(0, int(str(value).strip()))
    except ValueError:
        return default


def markdown(frame: pd.DataFrame) -> str:
    """A Markdown table of the comparison (written here: pandas' to_markdown needs tabulate)."""
    cols = ["system", "vendor", "accelerator", "nodes", "accelerators", "backend", "precision", "scale", "profile", "rules", "model", "scenario",
            "throughput", "units", "p99_latency_ms", "accuracy_auc", "power_w", "samples_per_j", "speedup", "status",
            "note"]  # fmt: skip
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
    public = frame.drop(columns=["_target_qps", "_no_accuracy"])
    csv = out / "comparison.csv"
    public.to_csv(csv, index=False)
    plots = _plots(frame, baseline, out)
    table = markdown(public)
    page = out / "report.html"
    page.write_text(_html(public, baseline, plots))
    return Comparison(public, baseline, csv, page, tuple(plots), table)


# Plots ----------------------------------------------------------------------------------------


def _decades(values: Iterable[Any]) -> bool:
    """Whether the positive values span more than a decade (a plot of them wants a log axis)."""
    vals = [float(v) for v in values if not _nan(v) and float(v) > 0]
    return bool(vals) and max(vals) / min(vals) > 10


def _groups(best: pd.DataFrame) -> tuple[list[tuple[Any, ...]], list[str]]:
    """The bar groups (one per :data:`LIKE` key) and their labels: model and scenario, plus the
    like-columns that differ between groups (so a tiny smoke run never stands beside a small one
    unlabelled)."""
    groups = list(dict.fromkeys(tuple(r[c] for c in LIKE) for r in best.to_dict("records")))
    varying = [i for i in range(2, len(LIKE)) if len({g[i] for g in groups}) > 1]
    labels = []
    for g in groups:
        parts = [str(g[0]), str(g[1])]
        if varying:
            parts.append(" ".join(str(g[i]) or "?" for i in varying))
        labels.append("\n".join(parts))
    return groups, labels


def _bars(ax: Any, best: pd.DataFrame, value: str, systems: list[str], colors: dict[str, str]) -> bool:
    """Bars of ``value`` per group and system; a log axis when the values span more than a decade.
    Returns whether the axis is logarithmic."""
    groups, labels = _groups(best)
    log = _decades(best[value])
    width = 0.8 / max(len(systems), 1)
    for i, system in enumerate(systems):
        mine = best[best["system"] == system]
        for row in mine.to_dict("records"):
            y = row[value]
            if _nan(y) or (log and y <= 0):
                continue
            x = groups.index(tuple(row[c] for c in LIKE)) + (i - (len(systems) - 1) / 2) * width
            ax.bar(x, y, width, color=colors[system], hatch=None if row["valid"] else "//",
                   edgecolor="black" if not row["valid"] else colors[system], alpha=1.0 if row["valid"] else 0.55)  # fmt: skip
            if not row["valid"]:
                ax.text(x, y, "INVALID", rotation=90, ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(groups)), labels)
    if log:
        ax.set_yscale("log")
    from matplotlib.patches import Patch

    handles = [Patch(color=colors[s], label=s) for s in systems]
    handles.append(Patch(facecolor="white", edgecolor="black", hatch="//", label="invalid"))
    ax.legend(handles=handles, fontsize=8)
    ax.grid(axis="y", alpha=0.3, which="both")
    return log


def _plots(frame: pd.DataFrame, baseline: str, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    best = _best(frame)
    systems = list(dict.fromkeys(frame["system"]))
    colors = {s: f"C{i % 10}" for i, s in enumerate(systems)}  # one color per system in every plot
    plots = []

    fig, ax = plt.subplots(figsize=(8, 4.5))
    log = _bars(ax, best, "throughput", systems, colors=colors)
    ax.set_ylabel("throughput (LoadGen samples/s" + (", log scale)" if log else ")"))
    ax.set_title("Throughput per model per system")
    plots.append(_save(fig, out / "throughput.png"))

    fig, ax = plt.subplots(figsize=(8, 4.5))
    log = _bars(ax, best, "speedup", systems, colors=colors)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_ylabel(f"speedup over {baseline} (x" + (", log scale)" if log else ")"))
    ax.set_title(f"Speedup over the baseline system {baseline} (like runs only)")
    plots.append(_save(fig, out / "speedup.png"))

    powered = best[best["samples_per_j"].notna()]
    if not powered.empty:
        fig, ax = plt.subplots(figsize=(8, 4.5))
        log = _bars(ax, powered, "samples_per_j", [s for s in systems if s in set(powered["system"])], colors=colors)
        ax.set_ylabel("samples per joule (measured component power" + (", log scale)" if log else ")"))
        ax.set_title("Energy efficiency: samples/J (" + ", ".join(sorted(set(powered["power_source"]))) + ")")
        plots.append(_save(fig, out / "samples_per_joule.png"))

    server = frame[(frame["scenario"] == "Server") & frame["p99_latency_ms"].notna() & frame["throughput"].notna()]
    sweeps = [key for key, grp in server.groupby(["system", *LIKE]) if grp["_target_qps"].nunique() >= 2]
    if sweeps:
        fig, ax = plt.subplots(figsize=(8, 4.5))
        for i, key in enumerate(sweeps):
            mask = np.logical_and.reduce([server[c] == v for c, v in zip(["system", *LIKE], key, strict=False)])
            grp = server[mask].sort_values("throughput")
            ax.plot(grp["throughput"], grp["p99_latency_ms"], marker="o", color=f"C{i % 10}", label=f"{key[0]} {key[1]}")
            bad = grp[~grp["valid"]]
            ax.scatter(bad["throughput"], bad["p99_latency_ms"], marker="x", s=80, color="red", zorder=3)
        ax.scatter([], [], marker="x", color="red", label="invalid")
        if _decades(server["throughput"]):
            ax.set_xscale("log")
        if _decades(server["p99_latency_ms"]):
            ax.set_yscale("log")
        ax.set_xlabel("completed queries/s")
        ax.set_ylabel("p99 latency (ms)")
        ax.set_title("Server: p99 latency against load")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3, which="both")
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
<p>Baseline system: <b>{html.escape(baseline)}</b>; a speedup is over its run of the same model, scenario, scale, profile,
precision and rule set only (else the note says what differs). Rows shaded red are INVALID (kept, never dropped). Power is component power
from software counters (GPU board via NVML, CPU package via RAPL), not wall power: not comparable with MLPerf power results.</p>
{note}
<table><tr>{head}</tr>
{chr(10).join(rows)}
</table>
{images}
</body></html>
"""
