"""What a machine can tell about itself, in the words of MLPerf's ``systems/<system>.json``.

:func:`probe` reads ``/proc``, ``/sys`` and NVML (``pynvml``) without importing torch; every
field it cannot tell is left out, so the submitter's ``--system-json`` fills it and a required
field nobody filled is an error that names it (see ``suite.submit``).
"""

from __future__ import annotations

import logging
import os
import platform
import shutil
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: The values MLPerf's CPU-only submissions give the accelerator fields.
NO_ACCELERATOR: dict[str, Any] = {
    # A string: MLPerf's checker tests "not value", so a number 0 reads as empty.
    "accelerators_per_node": "0",
    "accelerator_model_name": "N/A",
    "accelerator_memory_capacity": "N/A",
    "accelerator_frequency": "N/A",
    "accelerator_host_interconnect": "N/A",
    "accelerator_interconnect": "N/A",
    "accelerator_interconnect_topology": "N/A",
    "accelerator_memory_configuration": "N/A",
    "accelerator_on-chip_memories": "N/A",
}


def read_text(path: Path) -> str | None:
    """A kernel or config file's text, stripped; None if it cannot be read."""
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _gb(n_bytes: float) -> str:
    return f"{round(n_bytes / 1024**3)} GB"


def memory_capacity(n_bytes: float) -> str:
    """A memory size as a systems JSON writes it (``140 GB``: whole GiB, MLPerf's submitters' habit)."""
    return _gb(n_bytes)


def _cpuinfo() -> list[tuple[str, str]]:
    """``/proc/cpuinfo`` as (key, value) pairs in file order; empty where it cannot be read."""
    pairs = []
    for line in (read_text(Path("/proc/cpuinfo")) or "").splitlines():
        key, _, value = line.partition(":")
        pairs.append((key.strip(), value.strip()))
    return pairs


def cpu_model() -> str | None:
    """The processor's model name (``/proc/cpuinfo``'s first ``model name``), None where it has none."""
    return next((value for key, value in _cpuinfo() if key == "model name" and value), None)


def cpu() -> dict[str, Any]:
    """Processor model, sockets, cores per socket, frequency and caches."""
    out: dict[str, Any] = {}
    sockets, cores_per_socket, model = set(), None, cpu_model()
    for key, value in _cpuinfo():
        if key == "physical id":
            sockets.add(value)
        elif key == "cpu cores" and cores_per_socket is None and value.isdigit():
            cores_per_socket = int(value)
    if model:
        out["host_processor_model_name"] = model
    out["host_processors_per_node"] = max(len(sockets), 1)
    out["host_processor_core_count"] = cores_per_socket or os.cpu_count() or 1
    max_khz = read_text(Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq"))
    if max_khz and max_khz.isdigit():
        out["host_processor_frequency"] = f"{int(max_khz) / 1e6:.2f} GHz"
    caches = []
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        level, kind, size = (read_text(index / n) for n in ("level", "type", "size"))
        if level and size:
            suffix = {"Data": "d", "Instruction": "i"}.get(kind or "", "")
            caches.append(f"L{level}{suffix} {size}")
    if caches:
        out["host_processor_caches"] = ", ".join(caches)
    return out


def memory() -> dict[str, Any]:
    for line in (read_text(Path("/proc/meminfo")) or "").splitlines():
        if line.startswith("MemTotal:"):
            return {"host_memory_capacity": _gb(int(line.split()[1]) * 1024)}
    return {}


def storage() -> dict[str, Any]:
    out: dict[str, Any] = {"host_storage_capacity": _gb(shutil.disk_usage("/").total)}
    kinds = set()
    for dev in sorted(Path("/sys/block").glob("*")):
        if dev.name.startswith(("loop", "ram", "zram", "dm-", "sr")):
            continue
        rotational = read_text(dev / "queue/rotational")
        kinds.add("NVMe SSD" if dev.name.startswith("nvme") else "HDD" if rotational == "1" else "SSD")
    if kinds:
        out["host_storage_type"] = ", ".join(sorted(kinds))
    return out


def operating_system() -> dict[str, Any]:
    name = None
    for line in (read_text(Path("/etc/os-release")) or "").splitlines():
        if line.startswith("PRETTY_NAME="):
            name = line.split("=", 1)[1].strip('"')
    name = name or platform.system()
    return {"operating_system": f"{name}, kernel {platform.release()}"}


def accelerators() -> dict[str, Any]:
    """GPU count, model and memory through NVML; :data:`NO_ACCELERATOR` where NVML sees none."""
    try:
        import pynvml
    except ImportError:
        return {}
    try:
        pynvml.nvmlInit()
        count = pynvml.nvmlDeviceGetCount()
        if count == 0:
            return dict(NO_ACCELERATOR)
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        name = pynvml.nvmlDeviceGetName(handle)
        mem = pynvml.nvmlDeviceGetMemoryInfo(handle).total
    except pynvml.NVMLError as exc:
        log.info("NVML is not usable: %s", exc)
        return {}
    return {
        "accelerators_per_node": count,
        "accelerator_model_name": name.decode() if isinstance(name, bytes) else str(name),
        "accelerator_memory_capacity": _gb(mem),
    }


def probe(*, with_accelerators: bool = True) -> dict[str, Any]:
    """Every systems-JSON field this machine can tell."""
    out: dict[str, Any] = {"number_of_nodes": 1}
    for part in (cpu, memory, storage, operating_system):
        try:
            out.update(part())
        except OSError as exc:
            log.info("could not probe %s: %s", part.__name__, exc)
    if with_accelerators:
        out.update(accelerators())
    return out
