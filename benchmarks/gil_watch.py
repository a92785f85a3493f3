"""Who holds Python's GIL when LoadGen's issue thread stalls: a diagnostic for long Server runs.

LoadGen calls the SUT's issue callback from its own thread, which must take the GIL first; a thread
that keeps the GIL for tens of milliseconds (a long C call that does not release it, a collection,
a page-faulting copy) delays every query due meanwhile. :class:`GilWatch` runs a heartbeat thread
that takes the GIL every ``beat_ms`` and re-arms ``faulthandler``'s watchdog each time; if the
heartbeat misses ``threshold_ms``, the watchdog (a C thread that needs no GIL) writes every Python
thread's stack to the file, and the heartbeat, once back, writes when the gap began and how long
it was. A gap with no stacks before its line was shorter than the threshold plus a beat; a thread
shown running Python code (not waiting in ``acquire``, ``recv_bytes`` or ``wait``) is the likely
holder.

    with GilWatch(Path("gil_watch.txt"), threshold_ms=40):
        ...  # the LoadGen run
"""

from __future__ import annotations

import faulthandler
import threading
import time
from pathlib import Path
from types import TracebackType


class GilWatch:
    """Stacks of every thread whenever the GIL is out of reach for ``threshold_ms`` (see the module)."""

    def __init__(self, path: Path, threshold_ms: float = 40.0, beat_ms: float = 5.0, max_dumps: int = 20) -> None:
        self.path, self.threshold_s, self.beat_s, self.max_dumps = path, threshold_ms / 1e3, beat_ms / 1e3, max_dumps
        self.gaps: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="gil-watch", daemon=True)

    def __enter__(self) -> GilWatch:
        self._file = self.path.open("a", buffering=1)
        self._t0 = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()
        faulthandler.cancel_dump_traceback_later()
        self._file.write(f"# {len(self.gaps)} gaps of at least {self.threshold_s * 1e3:.0f} ms: "
                         + " ".join(f"[{at:.1f} s, {ms:.0f} ms]" for at, ms in self.gaps) + "\n")
        self._file.close()

    def _beat(self) -> None:
        last = time.perf_counter()
        while not self._stop.is_set():
            if len(self.gaps) < self.max_dumps:
                faulthandler.dump_traceback_later(self.threshold_s, repeat=False, file=self._file)
            time.sleep(self.beat_s)
            now = time.perf_counter()
            if now - last >= self.threshold_s:
                self.gaps.append((last - self._t0, 1e3 * (now - last)))
                self._file.write(f"## gap at {last - self._t0:.3f} s into the watch: {1e3 * (now - last):.1f} ms without the GIL\n")
            last = now


if __name__ == "__main__":  # a self-check: a thread that holds the GIL in one long C call
    out = Path("gil_watch_selfcheck.txt")
    out.unlink(missing_ok=True)
    with GilWatch(out, threshold_ms=30) as watch:
        time.sleep(0.1)
        big = list(range(6_000_000, 0, -1))
        t = threading.Thread(target=lambda: sorted(big * 3), name="hog")
        t.start()
        t.join()
        time.sleep(0.1)
    print(out.read_text()[-1500:])
    print("gaps:", watch.gaps)
