"""PyTorch on an NVIDIA GPU: tables and weights resident in device memory.

Each harness worker thread gets its own CUDA streams and pinned host buffers: a batch is staged
into pinned memory (straight from the dataset's rows when the harness hands over a lazily gathered
batch, so the items are copied once), sent on a copy stream, and computed on a compute stream that
waits for that copy. With two workers (the default for this backend) one batch's host-to-device
copy overlaps the other's compute.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from suite.backends.base import Backend, BackendInfo, Option
from suite.datasets.batch import Batch
from suite.errors import BackendUnavailableError, ConfigError
from suite.models import build

DTYPES = {"fp32": torch.float32, "tf32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
#: Batch sizes CUDA graphs are captured for; a batch is padded up to the next one.
GRAPH_BUCKETS = (16, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384)


FLAGS = ("0", "1", "false", "true", "no", "yes")


def _flag(value: str, key: str) -> bool:
    if value not in FLAGS:
        raise ConfigError(f"'{key}' must be 0 or 1 (got {value!r})")
    return value in ("1", "true", "yes")


@dataclass
class _Lane:
    """One worker thread's streams, pinned staging buffers and captured graphs."""

    copy: torch.cuda.Stream
    compute: torch.cuda.Stream
    capacity: int = 0
    host_dense: torch.Tensor | None = None
    host_sparse: list[torch.Tensor] = field(default_factory=list)
    #: numpy views of the pinned buffers above, where a batch is staged.
    stage_dense: np.ndarray | None = None
    stage_sparse: list[np.ndarray] = field(default_factory=list)
    host_out: torch.Tensor | None = None
    dev_dense: torch.Tensor | None = None
    dev_sparse: list[torch.Tensor] = field(default_factory=list)
    graphs: dict[int, tuple[torch.cuda.CUDAGraph, torch.Tensor]] = field(default_factory=dict)


class TorchCUDABackend(Backend):
    """Eager (optionally compiled, optionally CUDA-graphed) PyTorch on ``cuda:0``.

    ``--precision`` fp32 | tf32 (fp32 storage, TF32 matmuls) | bf16 | fp16 (embeddings and MLPs in
    that type; the sigmoid and the returned scores are fp32). Options: ``device`` (cuda:N),
    ``cuda_graphs`` 0|1 (capture one graph per padded batch size), ``compile`` 0|1
    (``torch.compile``). All are recorded in the result.
    """

    name = "torch-cuda"
    thread_safe = True
    default_workers = 2
    options = {
        "device": Option("the GPU", pattern=r"cuda(:[0-9]{1,3})?", form="cuda:N"),
        "cuda_graphs": Option("capture one CUDA graph per padded batch size", choices=FLAGS),
        "compile": Option("torch.compile the model", choices=FLAGS),
    }

    @classmethod
    def unavailable_reason(cls) -> str | None:
        if not torch.cuda.is_available():
            return f"no CUDA GPU visible to torch {torch.__version__}"
        return None

    def load(self) -> None:
        cfg = self.config
        if not torch.cuda.is_available():
            raise BackendUnavailableError(
                f"torch-cuda needs a CUDA GPU, and torch {torch.__version__} sees none here "
                f"(built with CUDA {torch.version.cuda})"
            )
        self.check_options(cfg.options)
        self._device = torch.device(cfg.option("device", "cuda:0"))
        self._graphs = _flag(cfg.option("cuda_graphs", "0"), "cuda_graphs")
        self._compile = _flag(cfg.option("compile", "0"), "compile")
        self._dtype = DTYPES[cfg.precision]
        torch.backends.cuda.matmul.allow_tf32 = cfg.precision == "tf32"
        torch.backends.cudnn.allow_tf32 = cfg.precision == "tf32"
        torch.set_num_threads(1)
        schema = cfg.model.schema
        self._schema = schema
        model = build(cfg.model).to(device=self._device, dtype=self._dtype)
        for module in model.modules():
            if isinstance(module, torch.nn.RNNBase):
                module.flatten_parameters()
        self._model: Any = torch.compile(model, dynamic=True) if self._compile else model
        self._local = threading.local()

    def _lane(self, n: int) -> _Lane:
        lane: _Lane | None = getattr(self._local, "lane", None)
        if lane is None:
            with torch.cuda.device(self._device):
                lane = _Lane(copy=torch.cuda.Stream(), compute=torch.cuda.Stream())
            self._local.lane = lane
        if lane.capacity < n:
            capacity = max(n, 2 * lane.capacity, GRAPH_BUCKETS[0])
            if self._graphs:
                capacity = self._bucket(capacity)
            # Zeroed, not empty: a CUDA graph reads the padding rows past the batch, and garbage
            # ids there would index outside the tables.
            lane.host_dense = torch.zeros((capacity, self._schema.dense), dtype=torch.float32, pin_memory=True)
            lane.host_sparse = [torch.zeros((capacity, t.lookups), dtype=torch.int32, pin_memory=True) for t in self._schema.tables]
            lane.stage_dense = lane.host_dense.numpy()
            lane.stage_sparse = [h.numpy() for h in lane.host_sparse]
            tasks = self._schema.tasks
            out_shape = (capacity,) if tasks == 1 else (capacity, tasks)
            lane.host_out = torch.empty(out_shape, dtype=torch.float32, pin_memory=True)
            lane.dev_dense = torch.zeros((capacity, self._schema.dense), dtype=torch.float32, device=self._device)
            lane.dev_sparse = [torch.zeros((capacity, t.lookups), dtype=torch.int32, device=self._device) for t in self._schema.tables]
            lane.capacity = capacity
            lane.graphs.clear()
        return lane

    @staticmethod
    def _bucket(n: int) -> int:
        for size in GRAPH_BUCKETS:
            if n <= size:
                return size
        return n

    def _stage(self, batch: Batch, lane: _Lane) -> None:
        """Copy the batch's rows into the lane's pinned buffers, once."""
        assert lane.stage_dense is not None
        batch.copy_into(lane.stage_dense, lane.stage_sparse)

    def _forward(self, dense: torch.Tensor, sparse: list[torch.Tensor]) -> torch.Tensor:
        logits = self._model(dense.to(self._dtype), sparse)
        return torch.sigmoid(logits.float())

    def _graph(self, lane: _Lane, size: int) -> tuple[torch.cuda.CUDAGraph, torch.Tensor]:
        found = lane.graphs.get(size)
        if found is None:
            assert lane.dev_dense is not None
            dense = lane.dev_dense[:size]
            sparse = [s[:size] for s in lane.dev_sparse]
            with torch.cuda.stream(lane.compute):
                for _ in range(2):
                    self._forward(dense, sparse)
            lane.compute.synchronize()
            graph = torch.cuda.CUDAGraph()
            # thread_local: another worker's CUDA calls (a pinned allocation, its own replays)
            # must not invalidate this thread's capture.
            with torch.cuda.graph(graph, stream=lane.compute, capture_error_mode="thread_local"):
                out = self._forward(dense, sparse)
            found = (graph, out)
            lane.graphs[size] = found
        return found

    def predict(self, batch: Batch) -> np.ndarray:
        n = len(batch)
        lane = self._lane(n)
        assert lane.host_dense is not None and lane.dev_dense is not None and lane.host_out is not None
        self._stage(batch, lane)
        size = self._bucket(n) if self._graphs else n
        with torch.inference_mode():
            with torch.cuda.stream(lane.copy):
                lane.dev_dense[:size].copy_(lane.host_dense[:size], non_blocking=True)
                for dev, host in zip(lane.dev_sparse, lane.host_sparse):
                    dev[:size].copy_(host[:size], non_blocking=True)
            lane.compute.wait_stream(lane.copy)
            with torch.cuda.stream(lane.compute):
                if self._graphs:
                    graph, out = self._graph(lane, size)
                    graph.replay()
                else:
                    out = self._forward(lane.dev_dense[:n], [s[:n] for s in lane.dev_sparse])
                lane.host_out[:n].copy_(out[:n], non_blocking=True)
            lane.copy.wait_stream(lane.compute)
            lane.compute.synchronize()
        return lane.host_out[:n].numpy().copy()

    def info(self) -> BackendInfo:
        props = torch.cuda.get_device_properties(self._device)
        return BackendInfo(
            name=self.name,
            version=torch.__version__,
            device=f"{props.name} ({props.total_memory / 2**30:.0f} GiB)",
            precision=self.config.precision,
            threads=1,
            extra={"cuda": torch.version.cuda, "cuda_graphs": self._graphs, "compile": self._compile},
        )

    def close(self) -> None:
        self._local = threading.local()  # this thread's lane; the others' go with their threads
        self._model = None
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
