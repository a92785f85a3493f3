"""Software power measurement over LoadGen's timed window: GPU board power (NVML), CPU package
energy (RAPL), or an honest "not measured".

A :class:`PowerMeter` is handed to ``suite.harness.run`` as its observer: it starts sampling when
LoadGen issues its first query and stops when ``StartTest`` returns, in a background thread at
:data:`SAMPLE_HZ` (>= 10 Hz). Energy comes from each source's own counter where it has one (RAPL's
``energy_uj`` with wraparound, NVML's total-energy counter), else from the power samples integrated
over time. Samples per joule are LoadGen's throughput divided by the average power, so the figure
uses LoadGen's own throughput, never a count of ours.

What was measured is said in words (:data:`GPU_ONLY`, :data:`CPU_ONLY`, :data:`GPU_AND_CPU`,
:data:`NOT_MEASURED`); without a readable source every number is ``None``, never an estimate.
These are component figures (no fans, DRAM outside the package, PSU losses...): never comparable
with MLPerf power results measured at the wall.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from suite.sysinfo import read_text

log = logging.getLogger(__name__)

#: Samples per second of the background thread.
SAMPLE_HZ = 20.0
#: Where the kernel exposes RAPL (Intel, and AMD Zen on recent kernels).
POWERCAP_ROOT = Path("/sys/class/powercap")

GPU_ONLY = "GPU board power only"
CPU_ONLY = "CPU package only"
GPU_AND_CPU = "GPU board power + CPU package"
NOT_MEASURED = "not measured: no readable source"


class Source(Protocol):
    """One power source: a name, what it covers, and readings."""

    name: str
    kind: str  # "gpu" or "cpu"

    def energy_j(self) -> float | None:
        """A monotonic energy counter in joules (wraparound already undone), or None if absent."""

    def power_w(self) -> float | None:
        """The instantaneous (or the device's short-average) power in watts, or None if absent."""


class RaplZone:
    """A RAPL package zone (``intel-rapl:N``): ``energy_uj`` with wraparound at ``max_energy_range_uj``."""

    kind = "cpu"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = f"RAPL {read_text(path / 'name') or path.name} ({path.name})"
        self._max_uj = int(read_text(path / "max_energy_range_uj") or 0)
        self._last_uj: int | None = None
        self._total_uj = 0

    def _raw(self) -> int:
        return int((self.path / "energy_uj").read_text())

    def energy_j(self) -> float:
        raw = self._raw()
        if self._last_uj is not None:
            delta = raw - self._last_uj
            if delta < 0:  # the counter wrapped (between two reads, at most once at >= 10 Hz)
                delta += self._max_uj + 1 if self._max_uj else 0
            self._total_uj += max(delta, 0)
        self._last_uj = raw
        return self._total_uj / 1e6

    def power_w(self) -> None:
        return None


class NvmlGpu:
    """One GPU through NVML: its total-energy counter (Volta+) and board power draw."""

    kind = "gpu"

    def __init__(self, nvml: Any, index: int) -> None:
        self._nvml = nvml
        self._handle = nvml.nvmlDeviceGetHandleByIndex(index)
        name = nvml.nvmlDeviceGetName(self._handle)
        self.name = f"NVML GPU {index} ({name.decode() if isinstance(name, bytes) else name})"
        try:
            nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle)
            self._has_counter = True
        except nvml.NVMLError:
            self._has_counter = False

    def energy_j(self) -> float | None:
        if not self._has_counter:
            return None
        return float(self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle)) / 1e3  # mJ

    def power_w(self) -> float:
        return float(self._nvml.nvmlDeviceGetPowerUsage(self._handle)) / 1e3  # mW


def rapl_sources(root: Path | None = None) -> list[Source]:
    """The readable RAPL package zones (``intel-rapl:N``, not their ``:N:M`` subzones)."""
    root = POWERCAP_ROOT if root is None else root
    zones: list[Source] = []
    if not root.is_dir():
        return zones
    for path in sorted(root.glob("intel-rapl:*")):
        if path.name.count(":") != 1:
            continue  # a subzone (core, uncore, dram) is inside its package's figure
        try:
            zone = RaplZone(path)
            zone.energy_j()
        except (OSError, ValueError) as exc:  # root-only since CVE-2020-8694
            log.info("RAPL zone %s is not readable: %s", path, exc)
            continue
        zones.append(zone)
    return zones


def nvml_sources() -> list[Source]:
    """One source per GPU NVML can see; none when ``pynvml`` or the driver is absent."""
    try:
        import pynvml
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
        count = pynvml.nvmlDeviceGetCount()
        gpus: list[Source] = []
        for i in range(count):
            gpu = NvmlGpu(pynvml, i)
            gpu.power_w()
            gpus.append(gpu)
        return gpus
    except pynvml.NVMLError as exc:
        log.info("NVML is not usable: %s", exc)
        return []


def discover() -> list[Source]:
    """Every readable source on this machine: NVML GPUs, then RAPL packages."""
    return [*nvml_sources(), *rapl_sources()]


def describe(sources: Sequence[Source]) -> str:
    """What a set of sources measures, in the words ``power.json`` uses."""
    kinds = {s.kind for s in sources}
    if kinds == {"gpu"}:
        return GPU_ONLY
    if kinds == {"cpu"}:
        return CPU_ONLY
    if kinds == {"gpu", "cpu"}:
        return GPU_AND_CPU
    return NOT_MEASURED


@dataclass(frozen=True)
class SourceReading:
    """One source over the window."""

    name: str
    kind: str
    energy_j: float
    average_w: float
    #: "counter" (the source's own energy counter) or "integrated" (power samples over time).
    method: str


@dataclass(frozen=True)
class PowerReport:
    """What ``power.json`` holds. Every number is None when nothing was measured."""

    measured: str
    window_s: float | None
    energy_j: float | None
    average_w: float | None
    samples_per_j: float | None
    sample_count: int
    sample_hz: float
    sources: tuple[SourceReading, ...] = ()
    #: LoadGen's throughput (its metric, samples/s) the samples/J figure was computed from.
    throughput_samples_per_s: float | None = None

    def __post_init__(self) -> None:
        if self.measured == NOT_MEASURED and any(v is not None for v in (self.energy_j, self.average_w, self.samples_per_j)):
            raise ValueError("a report that measured nothing cannot carry numbers")

    def with_throughput(self, samples_per_s: float | None) -> PowerReport:
        """This report with samples/J from LoadGen's throughput (None if either is unknown)."""
        per_j = samples_per_s / self.average_w if samples_per_s is not None and self.average_w else None
        return dataclasses.replace(self, samples_per_j=per_j, throughput_samples_per_s=samples_per_s)

    def to_dict(self) -> dict[str, Any]:
        return {
            "measured": self.measured,
            "source": self.measured,
            "window": "LoadGen's timed window: first query issued to StartTest returning",
            "window_s": self.window_s,
            "energy_j": self.energy_j,
            "average_w": self.average_w,
            "throughput_samples_per_s": self.throughput_samples_per_s,
            "samples_per_j": self.samples_per_j,
            "sample_count": self.sample_count,
            "sample_hz": self.sample_hz,
            "sources": [
                {"name": s.name, "kind": s.kind, "energy_j": s.energy_j, "average_w": s.average_w, "method": s.method}
                for s in self.sources
            ],
            "note": "component power from software counters, not wall power: not comparable with MLPerf power results",
        }


class PowerMeter:
    """Samples its sources in a background thread between :meth:`on_first_issue` and :meth:`on_end`.

    The harness calls both hooks (see ``suite.harness.run``'s ``observer``); both are idempotent and
    cheap on the calling thread: the first starts a thread, the second stops and joins it.

    Args:
        sources: the sources to read; None discovers this machine's (:func:`discover`).
        sample_hz: readings per second (at least 10).
    """

    def __init__(self, sources: Sequence[Source] | None = None, *, sample_hz: float = SAMPLE_HZ) -> None:
        if sample_hz < 10:
            raise ValueError(f"'sample_hz' must be >= 10 (got {sample_hz!r})")
        self.sources = list(discover() if sources is None else sources)
        self.sample_hz = sample_hz
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._t0 = self._t1 = 0.0
        self._closing = False
        self._start_energy: list[float | None] = []
        self._end_energy: list[float | None] = []
        self._integrated = [0.0] * len(self.sources)
        self._last_power: list[tuple[float, float] | None] = [None] * len(self.sources)
        self._power_n = [0] * len(self.sources)
        self.sample_count = 0

    # Harness hooks -----------------------------------------------------------------------
    def on_first_issue(self) -> None:
        """LoadGen issued its first query: the window opens."""
        with self._lock:
            if self._thread is not None or not self.sources:
                if not self._t0:
                    self._t0 = time.perf_counter()
                return
            self._t0 = time.perf_counter()
            self._start_energy = [self._energy(s) for s in self.sources]
            self._sample()
            self._thread = threading.Thread(target=self._run, name="recsuite-power", daemon=True)
            self._thread.start()

    def on_end(self) -> None:
        """``StartTest`` returned: the window closes."""
        with self._lock:
            if self._t1 or self._closing:
                return
            self._closing = True
            thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            thread.join()  # the thread wakes at once: this costs one reading at most
            self._sample()
            self._end_energy = [self._energy(s) for s in self.sources]
        # The window closes after the last reading, so every reading lies inside it.
        self._t1 = time.perf_counter()

    # Sampling ----------------------------------------------------------------------------
    @staticmethod
    def _energy(source: Source) -> float | None:
        try:
            return source.energy_j()
        except Exception as exc:
            log.debug("energy read of %s failed: %s", source.name, exc)
            return None

    def _sample(self) -> None:
        now = time.perf_counter()
        self.sample_count += 1
        for i, source in enumerate(self.sources):
            if source.kind == "cpu":
                # RAPL has no power reading; reading the counter often is what undoes wraparound.
                self._energy(source)
                continue
            try:
                watts = source.power_w()
            except Exception as exc:
                log.debug("power read of %s failed: %s", source.name, exc)
                continue
            if watts is None:
                continue
            last = self._last_power[i]
            if last is not None:
                self._integrated[i] += 0.5 * (watts + last[1]) * (now - last[0])
            self._last_power[i] = (now, watts)
            self._power_n[i] += 1

    def _run(self) -> None:
        interval = 1.0 / self.sample_hz
        while not self._stop.wait(interval):
            self._sample()

    def report(self) -> PowerReport:
        """The window's figures (call after :meth:`on_end`)."""
        window = self._t1 - self._t0 if self._t0 and self._t1 else None
        if not self.sources or not window or window <= 0:
            return PowerReport(
                measured=NOT_MEASURED,
                window_s=window,
                energy_j=None,
                average_w=None,
                samples_per_j=None,
                sample_count=0,
                sample_hz=self.sample_hz,
            )
        readings = []
        for i, source in enumerate(self.sources):
            start = self._start_energy[i] if i < len(self._start_energy) else None
            end = self._end_energy[i] if i < len(self._end_energy) else None
            if start is not None and end is not None and end >= start:
                energy, method = end - start, "counter"
            elif self._power_n[i] >= 2:
                energy, method = self._integrated[i], "integrated"
            else:
                continue
            readings.append(SourceReading(source.name, source.kind, energy, energy / window, method))
        if not readings:
            return PowerReport(
                measured=NOT_MEASURED, window_s=window, energy_j=None, average_w=None, samples_per_j=None,
                sample_count=self.sample_count, sample_hz=self.sample_hz,
            )
        energy = sum(r.energy_j for r in readings)
        kinds = {r.kind for r in readings}
        measured = describe([s for s in self.sources if s.kind in kinds])
        return PowerReport(
            measured=measured,
            window_s=window,
            energy_j=energy,
            average_w=energy / window,
            samples_per_j=None,
            sample_count=self.sample_count,
            sample_hz=self.sample_hz,
            sources=tuple(readings),
        )

