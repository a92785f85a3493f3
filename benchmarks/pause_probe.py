"""Does the machine pause, or only our process? A probe in a process of its own.

A Server run's tail can come from LoadGen's issue thread stalling for tens of milliseconds
(``harness.issue_stalls`` in the result). If a separate, idle process that only sleeps and wakes
sees gaps at the same wall-clock times, the machine stopped running processes (the hypervisor,
memory compaction, an interrupt storm) and nothing in the suite will remove them; if it sees none,
look inside the run's process (``gil_watch.py``, the result's ``harness.gc``).

    python3 benchmarks/pause_probe.py --seconds 400 --out probe.json &
    ... the run ...

It wakes every ``--beat-ms`` (1) and records each wake later than ``--threshold-ms`` (20) as
[unix time the sleep began, ms], the first 256, with what ``/proc/vmstat`` counted meanwhile for
compaction and page faults (Linux), and the CPU time stolen by the hypervisor over the whole probe
(``/proc/stat``). It ends after ``--seconds`` or when the file ``--stop`` names appears.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

#: /proc/vmstat counters worth seeing beside a gap: direct compaction and reclaim stall a process, and
#: automatic NUMA balancing's scans unmap pages that its threads then fault back in.
VMSTAT_KEYS = ("compact_stall", "compact_fail", "compact_success", "allocstall_normal", "allocstall_movable",
               "pgmajfault", "thp_fault_alloc", "thp_collapse_alloc", "numa_hint_faults", "numa_pte_updates",
               "numa_pages_migrated")
MAX_GAPS = 256


def vmstat() -> dict[str, int]:
    try:
        lines = Path("/proc/vmstat").read_text().splitlines()
    except OSError:
        return {}
    pairs = (line.split() for line in lines)
    return {k: int(v) for k, v in pairs if k in VMSTAT_KEYS}


def steal_jiffies() -> int | None:
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()
    except OSError:
        return None
    return int(fields[8]) if len(fields) > 8 else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--beat-ms", type=float, default=1.0)
    ap.add_argument("--threshold-ms", type=float, default=20.0)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--stop", type=Path, default=None, help="end early once this file exists")
    args = ap.parse_args()
    beat, threshold = args.beat_ms / 1e3, args.threshold_ms / 1e3
    start_unix, start = time.time(), time.perf_counter()
    first_vm, first_steal = vmstat(), steal_jiffies()
    gaps: list[list[float | dict[str, int]]] = []
    wakes, last_vm, last, checked = 0, first_vm, start, start
    while last - start < args.seconds:
        time.sleep(beat)
        now = time.perf_counter()
        wakes += 1
        if now - last >= threshold:
            vm = vmstat()
            if len(gaps) < MAX_GAPS:
                gaps.append([round(start_unix + (last - start), 3), round(1e3 * (now - last), 2),
                             {k: vm[k] - last_vm.get(k, 0) for k in vm if vm[k] != last_vm.get(k, 0)}])
            last_vm = vm
        elif now - checked >= 1.0:
            last_vm, checked = vmstat(), now
        last = now
        if args.stop is not None and wakes % 1000 == 0 and args.stop.exists():
            break
    end_vm, end_steal = vmstat(), steal_jiffies()
    report = {"start_unix": round(start_unix, 3), "seconds": round(last - start, 3), "wakes": wakes,
              "beat_ms": args.beat_ms, "threshold_ms": args.threshold_ms, "gaps": gaps,
              "vmstat_delta": {k: end_vm[k] - first_vm.get(k, 0) for k in end_vm},
              "steal_s": None if first_steal is None or end_steal is None else (end_steal - first_steal) / 100}
    args.out.write_text(json.dumps(report) + "\n")
    print(f"pause probe: {len(gaps)} gaps of {args.threshold_ms:.0f} ms or more in {report['seconds']:.0f} s "
          f"(longest {max((g[1] for g in gaps), default=0.0):.1f} ms); steal {report['steal_s']} s; vmstat {report['vmstat_delta']}")


if __name__ == "__main__":
    main()
