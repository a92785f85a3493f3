"""A backend that answers zeros at once, to measure the harness alone."""

from __future__ import annotations

import threading
import time

import numpy as np

from suite import __version__
from suite.backends.base import (
    ACCELERATOR_BUCKETS,
    PRECISIONS,
    Backend,
    BackendInfo,
    BatchDefaults,
    Option,
    accelerator_batching,
    bucket,
)
from suite.datasets.batch import Batch

#: Longest latency floor the null backend accepts (one second).
MAX_LATENCY_US = 1_000_000
#: Most device time per item the model accepts (1 ms).
MAX_ITEM_NS = 1_000_000
#: Server batches the modelled device holds at once: the one it runs and the next (it has no host
#: work to overlap, unlike torch-cuda's staging).
NULL_IN_FLIGHT = 2


class NullBackend(Backend):
    """Returns 0.0 for every item without touching the inputs (LoadGen's null SUT, as a backend).

    Option ``latency_us`` (default 0) makes every ``predict`` take at least that long. LoadGen
    generates SingleStream and MultiStream queries for twice the minimum duration at the expected
    latency; a SUT faster than that runs out of queries ("Ending early") on a fast machine. A floor
    above the expected latency makes such runs end naturally on any machine.

    Options ``batch_us`` and ``item_ns`` model an accelerator that runs one batch at a time: a
    batch of n items holds one device for ``batch_us + item_ns x bucket(n)`` (padded to the
    accelerator buckets, as torch-cuda's CUDA graphs are), calls from several workers queue for it,
    and the backend declares the batcher torch-cuda declares from those modelled times. It lets the
    harness's batching be studied and tested on a CPU with the real LoadGen.
    """

    name = "null"
    framework = "none (null backend)"
    device_kind = "none"
    precisions = PRECISIONS
    thread_safe = True
    options = {
        "latency_us": Option("every predict takes at least this long, in microseconds", lo=0, hi=MAX_LATENCY_US),
        "batch_us": Option("a modelled device's time per batch, in microseconds", lo=0, hi=MAX_LATENCY_US),
        "item_ns": Option("a modelled device's time per (padded) item, in nanoseconds", lo=0, hi=MAX_ITEM_NS),
        "lanes": Option("workers a modelled device declares (default 4)", lo=1, hi=64),
    }

    def load(self) -> None:
        self.check_options(self.config.options)
        self._latency_s = int(self.config.option("latency_us", "0")) / 1e6
        self._tasks = self.config.model.schema.tasks
        self._batch_s = int(self.config.option("batch_us", "0")) / 1e6
        self._item_s = int(self.config.option("item_ns", "0")) / 1e9
        self._lanes = int(self.config.option("lanes", "4"))
        self._device = threading.Lock()

    @property
    def models_a_device(self) -> bool:
        return bool(self._batch_s or self._item_s)

    def device_s(self, n: int) -> float:
        """The modelled device's seconds for a batch of ``n`` items."""
        return self._batch_s + self._item_s * bucket(n)

    def batch_defaults(self, scenario: str, target_latency_ns: int) -> BatchDefaults | None:
        """With a modelled device, what torch-cuda would declare for these replay times."""
        if not self.models_a_device:
            return None
        replay_ms = {size: 1000 * self.device_s(size) for size in ACCELERATOR_BUCKETS}
        return accelerator_batching(scenario, target_latency_ns, replay_ms, self._lanes, in_flight=NULL_IN_FLIGHT)

    def predict(self, batch: Batch) -> np.ndarray:
        if self._latency_s:
            time.sleep(self._latency_s)
        if self.models_a_device:
            with self._device:
                time.sleep(self.device_s(len(batch)))
        shape = (len(batch),) if self._tasks == 1 else (len(batch), self._tasks)
        return np.zeros(shape, dtype=np.float32)

    def info(self) -> BackendInfo:
        extra: dict[str, object] = {"latency_us": round(self._latency_s * 1e6)} if self._latency_s else {}
        if self.models_a_device:
            extra.update(batch_us=round(self._batch_s * 1e6), item_ns=round(self._item_s * 1e9))
        return BackendInfo(name=self.name, version=__version__, device="none", precision=self.config.precision, extra=extra)

    def close(self) -> None:
        pass
