"""PyTorch on the CPU: the fp32 reference every other backend is compared with."""

from __future__ import annotations

from suite.backends.base import default_omp_wait_policy

default_omp_wait_policy()  # before libgomp is loaded by torch

import numpy as np  # noqa: E402
import torch  # noqa: E402

from suite.backends.base import Backend, BackendInfo, cpu_parallelism, omp_wait_policy  # noqa: E402
from suite.config import Scenario  # noqa: E402
from suite.datasets.batch import Batch  # noqa: E402
from suite.errors import BackendUnavailableError  # noqa: E402
from suite.models import build  # noqa: E402


class TorchCPUBackend(Backend):
    """Eager PyTorch in inference mode, with ``threads`` intra-op threads.

    Only fp32 and bf16 are offered: fp16 matmuls on CPU are emulated and tf32 does not exist there.
    """

    name = "torch-cpu"
    framework = "PyTorch"
    precisions = ("fp32", "bf16")
    requires = ("torch",)
    thread_safe = True
    options = {}  # none: --threads and --precision say everything

    @classmethod
    def parallelism(cls, scenario: Scenario, cores: int, threads: int) -> tuple[int, int]:
        return cpu_parallelism(scenario, cores, threads)

    def load(self) -> None:
        if self.config.precision not in ("fp32", "bf16"):
            raise BackendUnavailableError(
                f"'precision' must be one of ['bf16', 'fp32'] on torch-cpu (got {self.config.precision!r})"
            )
        torch.set_num_threads(self.config.resolved_threads)
        self._dtype = torch.bfloat16 if self.config.precision == "bf16" else torch.float32
        self._model = build(self.config.model, dtype=self._dtype)

    def predict(self, batch: Batch) -> np.ndarray:
        with torch.inference_mode():
            dense = torch.from_numpy(batch.dense).to(self._dtype)
            sparse = [torch.from_numpy(ids) for ids in batch.sparse]
            logits = self._model(dense, sparse)
            return torch.sigmoid(logits.float()).numpy()

    def info(self) -> BackendInfo:
        return BackendInfo(
            name=self.name,
            version=torch.__version__,
            device="cpu",
            precision=self.config.precision,
            threads=torch.get_num_threads(),
            extra={"omp_wait_policy": omp_wait_policy()},
        )

    def close(self) -> None:
        self._model = None  # type: ignore[assignment]
