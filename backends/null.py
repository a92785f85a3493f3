"""A backend that answers zeros at once, to measure the harness alone."""

from __future__ import annotations

import time

import numpy as np

from suite import __version__
from suite.backends.base import PRECISIONS, Backend, BackendInfo, Option
from suite.datasets.batch import Batch

#: Longest latency floor the null backend accepts (one second).
MAX_LATENCY_US = 1_000_000


class NullBackend(Backend):
    """Returns 0.0 for every item without touching the inputs (LoadGen's null SUT, as a backend).

    Option ``latency_us`` (default 0) makes every ``predict`` take at least that long. LoadGen
    generates SingleStream and MultiStream queries for twice the minimum duration at the expected
    latency; a SUT faster than that runs out of queries ("Ending early") on a fast machine. A floor
    above the expected latency makes such runs end naturally on any machine.
    """

    name = "null"
    framework = "none (null backend)"
    device_kind = "none"
    precisions = PRECISIONS
    thread_safe = True
    options = {"latency_us": Option("every predict takes at least this long, in microseconds", lo=0, hi=MAX_LATENCY_US)}

    def load(self) -> None:
        self.check_options(self.config.options)
        self._latency_s = int(self.config.option("latency_us", "0")) / 1e6
        self._tasks = self.config.model.schema.tasks

    def predict(self, batch: Batch) -> np.ndarray:
        if self._latency_s:
            time.sleep(self._latency_s)
        shape = (len(batch),) if self._tasks == 1 else (len(batch), self._tasks)
        return np.zeros(shape, dtype=np.float32)

    def info(self) -> BackendInfo:
        extra = {"latency_us": round(self._latency_s * 1e6)} if self._latency_s else {}
        return BackendInfo(name=self.name, version=__version__, device="none", precision=self.config.precision, extra=extra)

    def close(self) -> None:
        pass
