"""DeepRecSched's tuner: DeepRecSys's hill climb over B and Q, beside the policy it tunes.

Every point is the capacity the engine's search (``suite.search.Search``) finds for a setting with
real LoadGen Server runs; this module decides which settings to search, in which order, and which
one to recommend.

The climb is the one DeepRecSys runs (``shared/reference/deeprecsys.md`` 3): phase 1 walks the
per-request batch sizes B with offload off and stops at the first B that sustains less than the one
before it (else takes the best of the list), then keeps the static setting if that did better;
phase 2, with an accelerator, walks the offload thresholds Q with that B, starting from the
phase-1 winner (no offload), and stops the same way.
"Less" means by more than the search's resolution, and a setting that schedules every query of the
run as an already searched one does is not searched again (see :meth:`Climb.climb`).
The static baseline (each query as one request, no offload) is measured in the same tune on the same
worker pool. The confirmed result never recommends a setting below the one it would replace
(:func:`never_below`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from suite.errors import ConfigError
from suite.search import Capacity, Search, Setting, TuneReport

from .policy import NO_OFFLOAD, WHOLE_QUERY, SchedConfig

if TYPE_CHECKING:
    from .backend import DeepRecSchedBackend

#: DeepRecSys's default batch-size list (utils ``32-64-128-256-512-1024``), walked upward.
BATCH_SIZES = (32, 64, 128, 256, 512, 1024)
#: Offload thresholds, walked downward from little offload to much ("lower Q until QPS stops improving").
THRESHOLDS = (512, 384, 256, 192, 128, 96, 64, 32, 1)


class Capacities(Protocol):
    """What the climb needs of the engine's search (``suite.search.Search``; tests stand in a table)."""

    tolerance: float

    def first_target(self, setting: Setting) -> float: ...

    def search_qps(self, phase: str, setting: Setting, start: float, factor: float) -> float: ...


def setting(batch_items: int, offload_items: int) -> Setting:
    """(B, Q) as the engine's setting, in the backend's ``tunable`` order."""
    return (("batch_items", batch_items), ("offload_items", offload_items))


def label(value: Setting) -> str:
    """A setting in run folder names and progress lines: ``B32-Q0``."""
    d = dict(value)
    return f"B{d['batch_items']}-Q{d['offload_items']}"


def check_walks(walks: Mapping[str, Sequence[int]]) -> None:
    """Refuse B and Q lists the climb cannot walk (before anything loads)."""
    batch, offload = walks.get("batch_items", BATCH_SIZES), walks.get("offload_items", THRESHOLDS)
    if not batch or any(b < 0 for b in batch):
        raise ConfigError(f"'batch-sizes' must be a non-empty list of sizes >= 0 (got {list(batch)!r})")
    if any(q < 1 for q in offload):
        raise ConfigError(f"'thresholds' must be sizes >= 1 (got {list(offload)!r})")


class Climb:
    """The climb's decisions over the search's capacities, and every setting it settled."""

    def __init__(self, search: Capacities, sched: SchedConfig, sizes: list[int]) -> None:
        self.search = search
        self.sched = sched
        self.sizes = sizes
        #: Every setting of the climb with its phase, in order.
        self.settled: list[tuple[str, Capacity]] = []
        #: The first searched capacity of each distinct schedule (see ``schedule``).
        self.searched: dict[tuple[tuple[int, ...], ...], Capacity] = {}

    def capacity(self, phase: str, batch_items: int, offload_items: int, start: float, factor: float) -> Capacity:
        """Search a setting's capacity and remember it (``settled``, and ``searched`` by schedule)."""
        point = setting(batch_items, offload_items)
        found = Capacity(setting=point, qps=self.search.search_qps(phase, point, start, factor))
        self.settled.append((phase, found))
        self.searched.setdefault(self.schedule(batch_items, offload_items), found)
        return found

    def climb(self, phase: str, settings: list[tuple[int, int]], prior_qps: float,
              first: Capacity | None = None) -> Capacity:
        """DeepRecSys's outer loop: walk ``settings`` in order, stop at the first that does worse than
        the one before it and keep the best so far; after the whole list, the best.

        "Worse" means lower by more than the search's resolution (``tolerance``): two searches of one
        setting can differ by that much, and a stop on such a difference ends the walk on noise.
        A setting that schedules every query of the run as an already searched one does (B and Q
        beyond the largest query, say) is not searched again: it takes that one's capacity.
        ``first`` is an already measured setting the walk starts from (phase 2 starts from phase 1's
        winner, so offloading is kept only where it helps).
        """
        tried: list[Capacity] = [first] if first is not None else []
        prior = prior_qps
        for b, q in settings:
            same = self.searched.get(self.schedule(b, q))
            if same is not None:
                found = dataclasses.replace(same, setting=setting(b, q), same_as=same.setting)
                self.settled.append((phase, found))
            else:
                start = prior or self.search.first_target(setting(b, q))
                found = self.capacity(phase, b, q, start=start, factor=1.25 if prior else 2.0)
            if tried and found.qps * (1 + self.search.tolerance) < tried[-1].qps:
                break
            tried.append(found)
            prior = found.qps
        return max(tried, key=lambda c: c.qps)  # the first of equals

    def schedule(self, batch_items: int, offload_items: int) -> tuple[tuple[int, ...], ...]:
        """How (B, Q) routes each query size of the run: equal schedules are one setting."""
        sched = dataclasses.replace(self.sched, batch_items=batch_items, offload_items=offload_items)
        return tuple(sched.route(k) for k in self.sizes)


def never_below(static: Capacity, cpu: Capacity, final: Capacity) -> tuple[Capacity, Capacity, list[Capacity]]:
    """The confirmed (CPU-only, tuned) settings, each replaced by the one it was meant to beat when
    its confirming runs held less: the search (short runs) can prefer a setting that the confirming
    runs (the profile's length) then find slower, and a tune must never recommend a setting below
    the static baseline it measured. Returns (cpu, final, the rejected settings)."""
    rejected = []
    if cpu.qps < static.qps:
        rejected.append(cpu)
        cpu = static
    if final is not cpu and final.qps < cpu.qps:
        if final not in rejected:
            rejected.append(final)
        final = cpu
    return cpu, final, rejected


def tune(backend: DeepRecSchedBackend, search: Search, walks: Mapping[str, Sequence[int]]) -> TuneReport:
    """The climb on the loaded ``backend`` with the engine's ``search`` (``suite.search.Search``)."""
    search.label = label
    batch_sizes = tuple(walks.get("batch_items", BATCH_SIZES))
    thresholds = tuple(walks.get("offload_items", THRESHOLDS))
    climb = Climb(search, backend.sched, search.query_sizes)
    static = climb.capacity("static", WHOLE_QUERY, NO_OFFLOAD, search.first_target(setting(WHOLE_QUERY, NO_OFFLOAD)),
                            factor=2.0)
    # Phase 1: B with offload off.
    phase1 = climb.climb("batch", [(b, NO_OFFLOAD) for b in batch_sizes], static.qps)
    # The whole query (B = 0) is a setting too: the tune never settles below the baseline it
    # measured, and takes it on a tie (the walk's best may be B beyond every query: static again).
    cpu_best = phase1 if phase1.qps > static.qps else static
    # Phase 2: Q with the best B, from the phase-1 winner (no offload).
    if backend.sched.accelerator != "none":
        b = cpu_best.value("batch_items")
        final = climb.climb("offload", [(b, q) for q in thresholds], cpu_best.qps, first=cpu_best)
    else:
        final = cpu_best
    static_c = search.confirm("confirm-static", static)
    cpu_c = static_c if cpu_best is static else search.confirm("confirm-cpu", cpu_best)
    final_c = search.confirm("confirm-tuned", final) if final != cpu_best else cpu_c
    cpu_c, final_c, rejected = never_below(static_c, cpu_c, final_c)
    chosen = dataclasses.replace(backend.sched, **dict(final_c.setting))
    data = {
        "tuned": final_c.to_dict(),
        "cpu_only": cpu_c.to_dict(),
        "static": static_c.to_dict(),
        # Settings the search preferred whose confirming runs held less than the one they would
        # replace (static, or the CPU-only winner): reported, never chosen.
        "rejected": [c.to_dict() for c in rejected],
        "speedup_vs_static": final_c.qps / static_c.qps if static_c.qps else None,
        "cpu_speedup_vs_static": cpu_c.qps / static_c.qps if static_c.qps else None,
        "climb": {
            "batch": [c.to_dict() for phase, c in climb.settled if phase == "batch"],
            "offload": [c.to_dict() for phase, c in climb.settled if phase == "offload"],
        },
    }
    t, c, s = final_c, cpu_c, static_c
    ratio = "no static baseline" if data["speedup_vs_static"] is None else f"{data['speedup_vs_static']:.2f}x static"
    summary = (
        f"on {chosen.cpu_workers} CPU workers: "
        f"tuned B={t.value('batch_items')} Q={t.value('offload_items')} {t.qps:,.1f} qps, "
        + (f"CPU only B={c.value('batch_items')} {c.qps:,.1f} qps, " if t.to_dict() != c.to_dict() else "")
        + f"static {s.qps:,.1f} qps ({ratio})"
    )
    return TuneReport(chosen=final_c, options=chosen.options(), threads=chosen.cpu_workers, summary=summary, data=data,
                      figure=lambda out, whole: plot(out / "qps.png", whole))


def plot(path: Path, data: dict[str, Any]) -> bool:
    """QPS against B (phase 1) and Q (phase 2), static dashed; False if matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    model = data["model"]["name"]
    climb = data["climb"]
    panels = [("batch", "per-request batch size B (items)", "batch_items")]
    if climb["offload"]:
        panels.append(("offload", "offload threshold Q (items)", "offload_items"))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), squeeze=False)
    for ax, (phase, text, key) in zip(axes[0], panels, strict=False):
        points = climb[phase]
        xs = [p[key] if p[key] else (1024 if key == "batch_items" else 2048) for p in points]
        ax.plot(xs, [p["qps"] for p in points], marker="o")
        ax.axhline(data["static"]["qps"], linestyle="--", color="grey", label="static (whole query, no offload)")
        chosen = data["tuned"] if phase == "offload" or not climb["offload"] else data["cpu_only"]
        ax.axhline(chosen["qps"], linestyle=":", color="green", label="chosen (confirmed)")
        ax.set_xscale("log", base=2)
        ax.set_xlabel(text)
        ax.set_ylabel("latency-bounded QPS")
        ax.set_title(f"{model}: p{data['percentile']:g} <= {data['sla_ms']:g} ms")
        ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True
