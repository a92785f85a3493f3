"""A backend that answers zeros at once, to measure the harness alone."""

from __future__ import annotations

import numpy as np

from suite import __version__
from suite.backends.base import Backend, BackendInfo
from suite.datasets.batch import Batch


class NullBackend(Backend):
    """Returns 0.0 for every item without touching the inputs (LoadGen's null SUT, as a backend)."""

    name = "null"
    thread_safe = True

    def load(self) -> None:
        self._tasks = self.config.model.schema.tasks

    def predict(self, batch: Batch) -> np.ndarray:
        shape = (len(batch),) if self._tasks == 1 else (len(batch), self._tasks)
        return np.zeros(shape, dtype=np.float32)

    def info(self) -> BackendInfo:
        return BackendInfo(name=self.name, version=__version__, device="none", precision=self.config.precision)

    def close(self) -> None:
        pass
