"""PyTorch on the CPU: the fp32 reference every other backend is compared with."""

from __future__ import annotations

from suite.backends.base import default_omp_wait_policy

default_omp_wait_policy()  # before libgomp is loaded by torch

import numpy as np  # noqa: E402
import torch  # noqa: E402

from suite.backends.base import Backend, BackendConfig, BackendInfo, Option, cpu_parallelism, default_malloc_policy, omp_wait_policy  # noqa: E402
from suite.config import Scenario  # noqa: E402
from suite.datasets.batch import Batch  # noqa: E402
from suite.errors import BackendUnavailableError, ConfigError  # noqa: E402
from suite.models import build  # noqa: E402

CPU_PRECISIONS = ("fp32", "bf16", "int8")


class TorchCPUBackend(Backend):
    """Eager PyTorch in inference mode, with ``threads`` intra-op threads.

    Precisions: fp32 (the reference), bf16 (weights and activations; AVX-512 BF16 or AMX where the
    CPU has them) and int8 (uint8 embedding rows with a per-row scale and bias, dynamically
    quantized int8 dense layers, see :mod:`suite.models.int8`). fp16 matmuls on CPU are emulated
    and tf32 does not exist there, so neither is offered.
    """

    name = "torch-cpu"
    framework = "PyTorch"
    precisions = ("fp32", "bf16", "int8")
    requires = ("torch",)
    thread_safe = True
    options = {
        # suite.models.int8.DENSE, written out: that module imports torch.
        "dense": Option("with --precision int8: dense layers in int8 (99% gate) or bf16 (99.9%); default int8",
                        choices=("int8", "bf16")),
        "rows": Option("with --precision int8: embedding rows in int8 (uint8, per-row scale and bias) or fp32; default int8",
                       choices=("int8", "fp32")),
    }

    @classmethod
    def parallelism(cls, scenario: Scenario, cores: int, threads: int) -> tuple[int, int]:
        return cpu_parallelism(scenario, cores, threads)

    @classmethod
    def check_config(cls, config: BackendConfig) -> None:
        cls.check_options(config.options)
        if config.precision not in CPU_PRECISIONS:
            raise BackendUnavailableError(
                f"'precision' must be one of {sorted(CPU_PRECISIONS)} on torch-cpu (got {config.precision!r})"
            )
        for key in ("dense", "rows"):
            if key in dict(config.options) and config.precision != "int8":
                raise ConfigError(f"'{key}' applies only with --precision int8 (got --precision {config.precision})")
        if config.option("rows", "int8") == "fp32" and config.option("dense", "int8") == "bf16":
            raise ConfigError("'rows=fp32' applies only with dense=int8 (got dense=bf16; bf16 throughout is --precision bf16)")

    def load(self) -> None:
        self.check_config(self.config)
        dense = self.config.option("dense", "int8")
        rows = self.config.option("rows", "int8")
        torch.set_num_threads(self.config.resolved_threads)
        self._malloc = default_malloc_policy()
        self._dtype = torch.bfloat16 if self.config.precision == "bf16" else torch.float32
        self._model = build(self.config.model, dtype=self._dtype)
        self._int8: dict[str, object] = {}
        if self.config.precision == "int8":
            from suite.models.int8 import quantize_int8

            self._model, plan = quantize_int8(self._model, dense, rows)
            self._int8 = plan.to_dict()
            if dense == "bf16":
                self._dtype = torch.bfloat16

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
            extra={"omp_wait_policy": omp_wait_policy(), "malloc": self._malloc, **({"int8": self._int8} if self._int8 else {})},
        )

    def close(self) -> None:
        self._model = None  # type: ignore[assignment]  # closed: the model is dropped so its memory is freed
