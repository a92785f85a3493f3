"""PyTorch on an NVIDIA GPU: tables and weights resident in device memory.

Everything a run needs is made at load, before LoadGen's clock: the weights (drawn chunk by chunk
straight into device memory in the serving dtype), a pool of *lanes* and, on every lane, one CUDA
graph per batch bucket (for dlrm-v3, whose requests are jagged, one per batch size and rounded
totals of history events and candidates: :data:`JAGGED_STEPS`). A lane is a copy stream, a
pinned host buffer and a device buffer of packed items, and its graphs; its batches run on one
compute stream every lane shares (``compute=shared``: they finish in the order they were sent) or
on a stream of its own (``compute=lanes``). Whichever harness thread calls ``predict`` takes a
free lane from the pool and gives it back when the batch is answered, so no CUDA object is made or
captured while LoadGen runs.

An item is packed as one row of int32 words: its dense features (float32 bits), then every table's
ids. The dataset is packed once into pinned host memory (:meth:`TorchCUDABackend.attach_items`) and
the model reads column views of a lane's device buffer. By default (``staging=dma``) the GPU's copy
engine moves a batch's rows into that buffer straight from the pinned dataset, one host-to-device
copy a span of rows, so the host spends microseconds on a batch and no host core copies rows (a batch
of many small spans, say NCF's, is gathered on the host instead: a copy costs more than its bytes).
``staging=copy`` gathers every batch with one memcpy per span into the lane's pinned buffer and
sends it with one copy (the default before; 7.6 ms of host time for a 28,000-item DLRM-v2 batch).
With ``staging=mapped`` the GPU's SMs gather the rows across PCIe from the pinned dataset, which
the GPU addresses directly; the batch sends only its row numbers. With ``start_from_device=1`` the
packed dataset lives in device memory. Every one of them moves the batch's bytes across PCIe
except ``start_from_device``, which MLPerf allows only with proof of the host's ingress bandwidth.

Size: this module is over 450 lines because the lanes, the graphs captured on them and the batcher
defaults measured from their replays are one object's state, made at load and read per batch;
the packing is in ``suite.backends.packed`` and the kernels in ``suite.backends.kernels``.
"""

from __future__ import annotations

import dataclasses
import queue
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from suite.backends.base import ACCELERATOR_BUCKETS, Backend, BackendInfo, BatchDefaults, Option, accelerator_batching, bucket
from suite.backends.packed import DMA_CALLS, HostView, PackedLayout, SpanDMA, cudart_memcpy_async, cudart_memcpy_batch_async, span_rows
from suite.backends.timeline import Timeline
from suite.datasets.batch import Batch
from suite.errors import BackendError, BackendUnavailableError, ConfigError
from suite.models import build

#: Largest default batch, in samples, for models whose sample is a whole request: a dlrm-v3 sample
#: is a sequence (up to 321 tokens at --scale small, 11,265 at MLPerf's size), so 16,384 of them
#: would need far more than an H200 holds (measured: out of memory). 256 requests is where
#: benchmarks/hstu_gpu.py ran fastest on the H200 at --scale small; a batch also holds at most
#: BATCH_TOKENS tokens (the plain attention pads a batch to its longest request).
MAX_BATCH_SAMPLES: dict[str, int] = {"dlrm-v3": 256}
BATCH_TOKENS = 1 << 17
#: Lanes (and harness workers) by default for such models: each eager batch of MLPerf-size
#: requests holds gigabytes of activations (the plain attention's scores alone are 7 GB in bf16 at
#: 11 requests), and the fused Offline on the H200 reached 569.8 requests/s with four (run4).
REQUEST_LANES = 4
#: Option defaults by model, where a model was measured to do better than the general defaults
#: (a user's ``--option`` still overrides each). NCF on the H200 (full scale, bf16, medium SLA: p95
#: 5 ms), whose GPU time a batch (0.2-0.6 ms) is too short to keep many lanes' host work apart:
#: with 8 lanes they queued for the worker's GIL (staging 4,774 us and launching 1,595 us a batch
#: of about 21,000 items; 273 and 235 us with 2), Offline 163,837 q/s and Server at 0.5x of it
#: INVALID (p95 33.6 ms); 2 lanes held Server at 0.5x and 0.6x, Offline 209,431-224,293 (session
#: 13). Then, in one call (session 14, 10-s Server runs): copy staging, 4 lanes made the most
#: Offline, 306,523 q/s (8 spinning lanes 298,028), but failed Server at 0.5x (p95 5.17 ms) with
#: all four lanes in flight; 2 lanes with copy held 0.5x and 0.7x of their Offline (236,001: p95
#: 3.51, 3.78 ms), ahead of dma (219,783; 3.91, 4.02 ms). So NCF loads 4 lanes with copy staging,
#: which Offline fills, and Server keeps 2 batches in flight (benchmarks/results/gpu_server_h200_s13, _s14).
MODEL_OPTIONS: dict[str, dict[str, str]] = {"ncf": {"lanes": "4", "in_flight": "2", "staging": "copy"}}
#: The same by model and precision, over MODEL_OPTIONS. DLRM-v2 in fp8 (full scale, one call, one
#: load each): graphs up to 65,536 items made Offline 75,186 samples/s against 73,258 with the
#: default 32,768 (the GPU's time an item 48.3 ns against 49.2), and held Server at 0.85x and 0.9x
#: of that for 45 s (p99 19.9 and 9.2 ms), where 0.85x of the smaller Offline failed (p99 64 ms):
#: Server's batches grow to about 50,000 items (benchmarks/results/gpu_server_h200_s16/c3). Not
#: measured in the other precisions, whose larger activations at 65,536 items would also crowd
#: full-scale tables (fp32's are 105 GB).
MODEL_PRECISION_OPTIONS: dict[tuple[str, str], dict[str, str]] = {("dlrm-v2", "fp8"): {"graph_max": "65536"}}
#: Batch sizes, in requests, timed at load for a model under a batch cap (dlrm-v3), besides every
#: size it has graphs for; the cap itself is added.
REQUEST_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
#: dlrm-v3's jagged batches replay CUDA graphs too (with counts from the host): one per batch size
#: and totals of history events and candidates, rounded up by a padding request in steps of
#: 1/JAGGED_STEPS of a request's slots (suite.models.dlrm_v3.Padding; 1,152 events at MLPerf's
#: size, a sixtieth of a batch of 8). Captured at load for every size up to JAGGED_GRAPH_REQUESTS
#: (and the cap), totals within JAGGED_SPREAD standard deviations of the mean of requests drawn as
#: the dataset's (JAGGED_SAMPLE of them): 115 graphs a lane at MLPerf's size, sizes 1-11, captured
#: in 5-7 s for four lanes. A size needing more than JAGGED_MAX_KEYS graphs (tiny requests, whose
#: candidate counts vary a lot) runs eagerly, as does a batch whose totals fall outside (counted in
#: ``jagged_graphs``). On the H200 at MLPerf's size one lane answered a request in 2.7 ms (eager
#: 6.9), four in 6.7 (8.9), eight in 12.7 (13.9), the scores equal to eager's
#: (benchmarks/results/gpu_server_h200_s11/c3).
JAGGED_STEPS = 8
JAGGED_SPREAD = 4.5
JAGGED_SAMPLE = 256
JAGGED_GRAPH_REQUESTS = 16
JAGGED_MAX_KEYS = 64
#: The widest request (tokens) whose batches replay graphs with the plain attention, which pads a
#: graph's every request to the widest: (L, L) scores a head (at --scale small, 321 tokens).
PLAIN_GRAPH_TOKENS = 1024
#: Server for such a model: two batches on the device at most (``batches_in_flight``; the next
#: batch keeps filling until one of them is done, so under load batches grow to what arrived
#: meanwhile instead of queueing), no wait, and batches whose time alone is at most this share of
#: the latency bound (the times below were eager ones; dlrm-v3 replays graphs now). A query waits
#: for the rest of one batch while its batch fills, then for the batch ahead of it and its own,
#: both slowed by sharing the device: measured, p99 came to about
#: five batch times alone. On the H200 (benchmarks/results/dlrm_v3_h200/run4, bf16, fused, two in
#: flight, at 0.9x Offline's 569.8/s): batches of at most 11 requests (20.4 ms alone, within a
#: third of the bound) completed 516.0/s with p99 122.0 ms, INVALID; at most 8 (12.6 ms, within a
#: fifth) 515.9/s with p99 64.9 ms, VALID. Earlier (run2, slower kernels): one batch at a time
#: could not keep up whatever the cap (304/s of 315, p99 2.0 s), and every lane at once gave
#: p99 145 ms. With Offline's batches of 8 (668/s), 20-s runs (gpu_server_h200_s9): 0.85x held
#: with two in flight (p99 71.3 ms; once 80.3, INVALID) and with three (67.8, 76.7 ms); 0.9x held
#: with neither three nor four (p99 153, 93 ms), so two stays. With graphs (gpu_server_h200_s11/c4,
#: c5; batches of at most 7 and 8, SERVER_MIN_RATE's picks) two held 0.9x of Offline's 728.4/s:
#: 660.3/s for 60 s (p99 62.8 ms), 656.1/s for 150 s (p99 75.1 ms).
REQUEST_SERVER_IN_FLIGHT = 2
REQUEST_SERVER_SHARE = 1 / 5
#: ... and no larger than the sizes that still serve this share of the best size's requests a
#: millisecond: under load Server's batches grow to the cap, so a cap that serves fewer requests a
#: millisecond lowers what Server can hold. With dlrm-v3's graphs on the H200 (gpu_server_h200_s11),
#: 5-8 requests took 1.29-1.31 ms a request and 10 took 1.54: capped at 10 (15.4 ms, within the
#: fifth), Server at 0.9x Offline (650/s) ran batches of 8.8 and fell behind (p99 346 ms).
SERVER_MIN_RATE = 0.97
#: fp8's storage dtype is bf16: the fused kernels (suite.backends.kernels) quantize what runs in fp8.
DTYPES = {"fp32": torch.float32, "tf32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16, "fp8": torch.bfloat16}
#: Batch sizes CUDA graphs are captured for; a batch is padded up to the next one, and one larger
#: than the last runs eagerly. Beyond the harness's accelerator buckets, steps of 4,096 up to 32,768:
#: on the H200 DLRM-v2's fp8 forward took 0.765 ms at 16,384 items and 1.454 ms at 32,768 (5% more
#: items a second, and half the host work per item; benchmarks/results/gpu_kernels_h200_s4/k1.txt),
#: and Offline takes the largest bucket. Server's batches there are of any size: at 0.9x Offline
#: they averaged 28,375 items, which the 32,768 bucket padded by 15% (benchmarks/results/gpu_offline_h200).
GRAPH_BUCKETS = (*ACCELERATOR_BUCKETS, 20480, 24576, 28672, 32768)
#: ``--option graph_max``: the largest graph bucket; above GRAPH_BUCKETS' last, buckets step by this.
#: With steps of 8,192, DLRM-v2 fp8's Server batches at 0.9x Offline (52,645 items on average) were
#: padded by 7.1% on the H200 (benchmarks/results/gpu_server_h200_s18/c1): GPU time spent on nothing.
GRAPH_MAX_STEP = 4096
GRAPH_MAX_RANGE = (4096, 131072)
#: How a batch's packed rows reach the device (see the module docstring); the first is the default.
#: Copy beat mapped: DLRM-v2 fp8 Offline on the H200 gave 34,542 samples/s with copy and 28,698 with
#: mapped (whose PCIe gather competes with the forward), though mapped costs the host 538 us a batch
#: against 2,848 (benchmarks/results/gpu_staging_h200). Copy's host gather then capped Server: at
#: 0.9x Offline it took 7.6 ms a 28,000-item batch and a 300-s run fell 14.5 s behind where the
#: same run from device memory held (benchmarks/results/gpu_server_h200_s6). DMA needs neither the
#: host's copy nor the SMs.
STAGINGS = ("dma", "copy", "mapped")
#: Under ``staging=dma``, a batch whose spans average fewer bytes than this is gathered on the host
#: and sent in one copy: a copy costs about a microsecond of host time and a few of the copy
#: engine's, so small ones are cheaper to gather (a DLRM-v2 sample is about 245 KB, an NCF query a
#: few hundred bytes).
DMA_MIN_SPAN_BYTES = 16 << 10
#: Where a ``predict`` call's wall time goes, as ``predict_us_per_batch`` records it per batch:
#: waiting for a free lane, staging the rows, launching (graph or eager, the scores' copy back),
#: waiting for the GPU and copying the scores out. ``host_us_per_batch`` is stage + launch.
PREDICT_STEPS = ("lane", "stage", "launch", "gpu")
#: Where dlrm-v3 learns each request's real history events and candidates, which size every
#: tensor of its batch (option ``counts``; the first is the default): from the host, which holds
#: them for the dataset, in one small copy; or counted on the device and read back mid-forward, a
#: host sync that holds the lane's launches until the GPU has run everything queued before it.
COUNTS_FROM = ("host", "device")
#: Models whose ``--precision bf16`` runs the fused kernels unless ``fused=0``: DLRM-v2 through
#: LoadGen on the H200 gave 32,974 samples/s fused against 24,175 plain (graphs both), at 99.99% of
#: the teacher's AUC (benchmarks/results/merged_h200, kernels_h200.txt).
#: dlrm-v3 in bf16 runs its fused attention and row kernels by default: on the H200 with MLPerf-size
#: requests it made 586.2 requests/s Offline and held Server at 0.9x (p99 51.5 ms) with the 99.9%
#: gate passed (benchmarks/results/final_h200_s4/f2, dlrm_v3_h200/run4), against 37.0/s plain.
FUSED_BY_DEFAULT = {"bf16": ("dlrm-v2", "dlrm-v3")}
#: Server batches held at once (``BatchDefaults.batches_in_flight``; option ``in_flight``; 0: every
#: lane, the default). Measured on the H200 with the GPU in a worker process (the default
#: placement): every lane in flight held DLRM-v2 fp8 Server at 0.9x Offline VALID for 300 s (35,672
#: QPS, p99 9.4 ms; benchmarks/results/gpu_server_placement_h200; a placement bug then dropped any
#: limit), while a limit of 5 with the faster kernels (a 32,768-item batch replays in 1.39 ms,
#: staging it by copy takes the host about four replays) completed 51,582 of 64,226 QPS and failed
#: (benchmarks/results/final_h200_s4). With the lanes in the driver process neither held: every
#: lane gave p99 998 ms over 214 s, a limit of 5 p99 84 s over 300 s (the GIL; docs/scale-out.md).
SERVER_IN_FLIGHT = 0
#: Where lanes run their batches (option ``compute``): ``shared``, one compute stream for every lane,
#: so the GPU runs batches one after another in the order they were sent and each lane has the
#: others' batch times to stage its next; ``lanes``, a stream per lane, so batches run at once and
#: share the device. Models in :data:`SHARED_COMPUTE_BY_DEFAULT` default to shared, others to lanes.
COMPUTE = ("shared", "lanes")
#: On the H200, DLRM-v2 fp8 in Server at 0.9x Offline for 40 s: shared p99 20.9 ms VALID with the
#: GPU 87% busy; a stream per lane p99 6.9 s INVALID, 69% busy (eight 32,768-item batches shared
#: the GPU, finished together and left it idle while every lane staged its next; Offline within 2%;
#: benchmarks/results/gpu_offline_h200). NCF's small batches failed Server either way.
SHARED_COMPUTE_BY_DEFAULT = ("dlrm-v2",)
#: How a lane's thread waits for its batch (option ``sync``): ``block``, the default, sleeps until
#: the GPU signals (``cudaEventBlockingSync``); ``spin`` busy-waits, CUDA's default,
#: which keeps one core busy for every lane in flight: on the H200 (16 cores) eight lanes waiting on
#: one shared stream left LoadGen's issue thread, in the other process, without the GIL for 40-60
#: ms at a time in a 300-s Server run, while no thread of that process was anywhere that holds it
#: for long (benchmarks/results/gpu_server_h200_s7/c3/gil_watch.txt): the stacks of a process the
#: scheduler did not run. With ``block``, 120 s at 0.9x Offline had no stall and p99 6.5 ms (c4).
SYNCS = ("block", "spin")
#: Largest packed dataset ``staging=dma`` or ``mapped`` pins (torch's pinned allocator rounds a
#: block up to a power of two); a larger one is staged by copy, and the result says why.
MAPPED_MAX_BYTES = 16 << 30


FLAGS = ("0", "1", "false", "true", "no", "yes")
#: How the matmuls of the parts a 16-bit build keeps in fp32 run (dlrm-v3's content, context and
#: head MLPs: ``KEEP_FP32``). tf32 (the default) rounds their operands to a 10-bit mantissa on the
#: tensor cores; on the CPU, emulated, that moved dlrm-v3's logits by +0.00009 mean (std 0.0005) at
#: --scale small, a tenth of what the bf16 build itself moves them, and kept the 99.9% gate
#: (docs/dlrm-v3.md). In fp32 those MLPs took 12% of an H200 batch, without tensor cores; in TF32
#: dlrm-v3's Offline was 1.08x at MLPerf's size, and the gate held there.
KEPT_FP32_MATH = ("tf32", "fp32")


def span_columns(table: np.ndarray, spans: Sequence[tuple[int, int]]) -> np.ndarray:
    """The columns ``spans`` (half-open [lo, hi) ranges) of ``table`` one after another: a batch's
    per-request values from the dataset's, a view for one span."""
    if len(spans) == 1:
        return table[:, spans[0][0] : spans[0][1]]
    return np.concatenate([table[:, lo:hi] for lo, hi in spans], axis=1)


def graph_buckets(largest: int = GRAPH_BUCKETS[-1]) -> tuple[int, ...]:
    """The batch buckets graphs are captured for up to ``largest`` items (``--option graph_max``):
    :data:`GRAPH_BUCKETS` cut there, then steps of :data:`GRAPH_MAX_STEP` up to it. Offline takes
    the largest; Server the largest whose replay fits its share of the latency bound."""
    kept = tuple(b for b in GRAPH_BUCKETS if b < largest)
    return (*kept, *range(GRAPH_BUCKETS[-1] + GRAPH_MAX_STEP, largest, GRAPH_MAX_STEP), largest)


def _flag(value: str, key: str) -> bool:
    if value not in FLAGS:
        raise ConfigError(f"'{key}' must be 0 or 1 (got {value!r})")
    return value in ("1", "true", "yes")


def _batch_cap(spec: Any) -> int | None:
    """The most samples a batch of ``spec``'s model holds by default (None: no cap): MAX_BATCH_SAMPLES,
    and at most BATCH_TOKENS tokens of its widest request."""
    cap = MAX_BATCH_SAMPLES.get(spec.name)
    if cap is None:
        return None
    tokens = getattr(spec.config, "tokens", None)
    if tokens is not None:
        from suite.models.base import parse_scale

        cap = min(cap, max(1, BATCH_TOKENS // int(tokens(parse_scale(spec.scale)))))
    return cap


def request_server_batching(target_latency_ns: int, batch_ms: dict[int, float], workers: int,
                            in_flight: int = REQUEST_SERVER_IN_FLIGHT) -> BatchDefaults:
    """Server's batcher for a model under a batch cap, from the wall time of one batch per size:
    the largest size within :data:`REQUEST_SERVER_SHARE` of the latency bound that serves at least
    :data:`SERVER_MIN_RATE` of the best size's requests a millisecond (the smallest if none does),
    no wait, at most ``in_flight`` batches on the device (0: every worker)."""
    budget_ms = target_latency_ns / 1e6 * REQUEST_SERVER_SHARE
    best = max(size / ms for size, ms in batch_ms.items())
    fits = [size for size, ms in batch_ms.items() if ms <= budget_ms and size / ms >= SERVER_MIN_RATE * best]
    return BatchDefaults(max_batch_items=max(fits, default=min(batch_ms)), batch_timeout_us=0, workers=workers,
                         batches_in_flight=min(in_flight, workers))


def request_offline_batching(batch_ms: dict[int, float], workers: int, work: dict[int, float] | None = None) -> BatchDefaults:
    """Offline's batcher for a model under a batch cap, from the wall time of one batch per size:
    the size that did the most work a millisecond alone (the larger of equals), no wait, every
    worker. ``work``: what each size's timed batch held (dlrm-v3: its requests' multiply-adds,
    :meth:`~suite.models.configs.DLRMv3Config.request_macs`); without it, its requests.

    The cap is not always that size: at MLPerf's dlrm-v3 size on the H200 a batch of 8 requests
    took 11.9 ms and one of 11 took 18.6 ms, 13-18% more time a request in each of three runs
    (benchmarks/results/gpu_server_h200_s8/c2/v3, dlrm_v3_h200/run4); through LoadGen, batches of 8
    made 664.0 requests/s against 612.2 with the cap (1.08x, same call, gpu_server_h200_s9/c1).

    Why work and not requests: jagged requests differ, and the first k of the timing rows are not
    the mean request for every k. At MLPerf's size the first 5 hold 8,139 tokens a request and the
    first 7 hold 8,316 (about 4% more multiply-adds a request), so by requests a millisecond a batch
    of 7 is charged for its longer requests, and the pick swung between 5 and 7 with the timing's
    noise. On the H200, two runs of the same code in one call made 922.2 requests/s with 7 and
    909.3 with 5 (benchmarks/results/gpu_server_h200_s21/c2); in another call 947.2 with 7 and
    936.2 with 5 (gpu_server_h200_s22/c2). By multiply-adds a millisecond, sizes 8 to 11 are within
    2% of each other there and the pick is the cap, 11: 964.6 requests/s VALID, against 957.6 with
    batches of 7 in the same call (gpu_server_h200_s22/c4)."""
    done = work or {size: float(size) for size in batch_ms}
    best = max(batch_ms, key=lambda size: (done[size] / batch_ms[size], size))
    return BatchDefaults(max_batch_items=best, batch_timeout_us=0, workers=workers)


@dataclass
class _Lane:
    """One lane: streams, packed staging buffers and the graphs captured on them."""

    copy: torch.cuda.Stream
    compute: torch.cuda.Stream
    #: Recorded on ``compute`` when the lane's batch is answered: what the host waits for (a shared
    #: stream's own synchronize would wait for every lane's later batches too).
    done: torch.cuda.Event
    capacity: int
    host: torch.Tensor  # pinned (capacity, words) int32
    stage: np.ndarray  # numpy view of ``host``
    dev: torch.Tensor  # (capacity, words) int32 on the device
    host_out: torch.Tensor  # pinned scores
    host_rows: torch.Tensor  # pinned int64 row numbers (mapped staging, start_from_device)
    stage_rows: np.ndarray
    dev_rows: torch.Tensor
    #: By batch bucket; for a jagged model by :meth:`suite.models.dlrm_v3.Padding.key`.
    graphs: dict[Any, tuple[torch.cuda.CUDAGraph, torch.Tensor]] = field(default_factory=dict)
    #: Buffers for batches above ``capacity`` (eager only), made on first need and kept.
    overflow: _Lane | None = None
    #: dlrm-v3 with counts from the host: pinned (2, capacity) int64, a batch's request counts on
    #: their way to the device, and where a jagged graph reads them there.
    counts_host: torch.Tensor | None = None
    counts_dev: torch.Tensor | None = None
    #: Jagged batches replayed as a graph, and run eagerly (no graph for their totals).
    replayed: int = 0
    eager: int = 0
    #: Seconds, summed over the lane's batches, of :data:`PREDICT_STEPS` (wall time, so each step
    #: also holds any wait for the GIL or a CUDA call's lock on its way).
    steps_s: np.ndarray = field(default_factory=lambda: np.zeros(len(PREDICT_STEPS)))
    batches: int = 0
    #: Batches by how they were staged: "dma", "device" or "host" (gathered on the host).
    staged: dict[str, int] = field(default_factory=dict)


class TorchCUDABackend(Backend):
    """Eager or CUDA-graphed (optionally compiled) PyTorch on one GPU.

    ``--precision`` fp32 | tf32 (fp32 storage, TF32 matmuls) | bf16 | fp16 (embeddings and MLPs in
    that type; the sigmoid and the returned scores are fp32). Options: ``device`` (cuda:N),
    ``cuda_graphs`` 0|1 (default 1: one graph per batch bucket and lane, captured at load; 0 runs
    eagerly; a model torch cannot capture falls back to eager unless 1 was asked for, and the
    result says why), ``compile`` 0|1 (``torch.compile``; graphs then default to 0), ``lanes`` (streams and
    buffers for that many concurrent batches; default 8, the harness's default workers;
    :data:`REQUEST_LANES` for dlrm-v3), ``in_flight`` (Server batches held at once,
    :data:`SERVER_IN_FLIGHT`, 2 for dlrm-v3; 0: every lane; NCF's defaults of these and of
    ``staging`` are in :data:`MODEL_OPTIONS`),
    ``compute`` shared|lanes (:data:`COMPUTE`: one compute stream for every lane, or one each),
    ``sync`` block|spin (:data:`SYNCS`: how a lane's thread waits for its batch),
    ``staging`` dma|copy|mapped (default dma: the copy engine moves each span of a batch's rows from
    the pinned dataset; copy: one memcpy into a pinned buffer, then one copy; mapped: the GPU's SMs
    gather a batch's rows from pinned host memory), ``dma`` batch|span (:data:`DMA_CALLS`: one
    runtime call for a batch's copies, or one a span), ``start_from_device`` 0|1 (the
    query library's rows kept in device memory, as MLPerf's ``start_from_device``; recorded, and
    ``suite check`` reports it), ``fused`` 0|1 (DLRM models on
    ``suite.backends.kernels``: one Triton launch for all tables, matmuls with fused epilogues;
    ``--precision fp8`` implies it; the default for :data:`FUSED_BY_DEFAULT`), ``rows`` bf16|fp16|fp8|int8 (how fused tables are stored;
    fp8's default fp8 with one scale per table), ``row_scales`` inline|apart|table (where 8-bit rows keep their scales), ``gemm``
    triton|cublas|auto (fused matmuls), ``residual`` bf16|x0-fp8|fp8 (what fp8 cross layers read),
    ``fuse_last`` 0|1 (the last 1-wide layer in an epilogue), ``tune`` 0|1 (time tile shapes at load). All are
    recorded in the result.
    """

    name = "torch-cuda"
    framework = "PyTorch"
    device_kind = "cuda"
    precisions = ("fp32", "tf32", "bf16", "fp16", "fp8")
    requires = ("torch",)
    thread_safe = True
    #: Lanes and harness workers: on the H200, DLRM-v2 Offline gave 11.1k samples/s with one lane,
    #: 20.8k with two and 24.4k with four (benchmarks/results/cuda_host_h200_4m.txt). Eight: in
    #: Server one worker forms the next batch while the others run theirs, and with four a lane's
    #: cycle (2.8 ms of host staging, then the forward) capped the batches a second at about what
    #: 0.88x Offline needs, so a 300-s run at that load queued up (docs/gpu.md).
    default_workers = 8
    options = {
        "device": Option("the GPU", pattern=r"cuda(:[0-9]{1,3})?", form="cuda:N"),
        "cuda_graphs": Option("CUDA graphs for every batch bucket, captured at load (default 1)", choices=FLAGS),
        "compile": Option("torch.compile the model (graphs then default to 0)", choices=FLAGS),
        "lanes": Option("concurrent batches: streams and pinned buffers (default 8; 4 for dlrm-v3 and ncf)", lo=1, hi=64),
        "in_flight": Option("Server batches held at once (default 0: every lane; 2 for dlrm-v3 and ncf)", lo=0, hi=64),
        "staging": Option("how a batch's rows reach the GPU: dma (default, but copy for ncf: the copy engine reads them from the pinned dataset), "
                          "copy (the host gathers them into a pinned buffer) or mapped (the SMs gather them from pinned host memory)",
                          choices=STAGINGS),
        "dma": Option("how staging=dma issues a batch's copies: batch (one cudaMemcpyBatchAsync, CUDA 12.8 and later; default) "
                      "or span (one cudaMemcpyAsync a span)", choices=DMA_CALLS),
        "start_from_device": Option("keep the query library's rows in device memory (MLPerf's start_from_device)", choices=FLAGS),
        "fused": Option("DLRM models on the fused Triton kernels (--precision fp8 implies it; default 1 for dlrm-v2 in bf16)", choices=FLAGS),
        "rows": Option("how fused tables store rows (default: the precision's; fp8 rows with one scale per table for fp8)", choices=("bf16", "fp16", "fp8", "int8")),
        "row_scales": Option("where fused 8-bit rows keep their scales: with each row, apart, or one per table",
                             choices=("inline", "apart", "table")),
        "gemm": Option("fused matmuls: Triton, cuBLAS (then one epilogue kernel) or the measured pick per weight", choices=("triton", "cublas", "auto")),
        "residual": Option("how fp8 cross layers read x0 and x_l: bf16, x0-fp8 or fp8 (x_l kept in fp8 alone)", choices=("bf16", "x0-fp8", "fp8")),
        "fuse_last": Option("the 1-wide last layer in the epilogue of the matmul before it", choices=("0", "1")),
        "tune": Option("time the fused matmuls' (dlrm-v3: the attention's, in fp8 with attention=qk-fp8; not qkv-fp8) tile shapes at load",
                       choices=("0", "1")),
        "sync": Option("how a lane waits for its batch: block (sleep until the GPU signals) or spin (busy-wait, CUDA's default)", choices=SYNCS),
        "compute": Option("where batches run: one stream shared by every lane, in order (default for dlrm-v2), or a stream per lane",
                          choices=COMPUTE),
        "counts": Option("where dlrm-v3 learns each request's length: host (default: the dataset's counts, sent with the batch) "
                         "or device (counted on the GPU and read back mid-forward)", choices=COUNTS_FROM),
        "attention": Option("dlrm-v3's fused attention: auto (default: qkv-fp8 where the Gluon kernel runs, else model), gluon "
                            "(the Hopper kernel with asynchronous products, bf16 on sm_90: 1.08x the Triton kernel on an H200), "
                            "model (the Triton kernel in the model's dtype), fp8 (its two products in fp8 e4m3; passes the "
                            "99.9% gate but took 2.3x bf16's time on an H200, quantizing included) or qk-fp8 (the gluon kernel "
                            "with q and k in fp8 e4m3: 1.04x to 1.06x gluon on an H200, passing the gate) or qkv-fp8 (qk-fp8 "
                            "with p v in e4m3 too: Offline 1.06x qk-fp8 on an H200, passing the gate; one launch shape, so no tune=1)",
                            choices=("auto", "gluon", "model", "fp8", "qk-fp8", "qkv-fp8")),
        "attention_out": Option("the dtype dlrm-v3's Gluon attention writes its output in: bf16 (default; rounded once from "
                                "fp32 sums, as the plain path's bf16 attention) or fp32", choices=("bf16", "fp32")),
        "projections": Option("dlrm-v3's STU products (fused=1, bf16 build): bf16 (default), fp8 (both in fp8 e4m3 with row-wise "
                              "scales; 1.03x on an H200 and the 99.9% gate failed) or fp8-out (the output projection alone)",
                              choices=("bf16", "fp8", "fp8-out")),
        "graph_max": Option(f"the largest batch, in items, with a CUDA graph (default {GRAPH_BUCKETS[-1]}, 65536 for dlrm-v2 in fp8; a multiple of 4096; "
                            f"above {GRAPH_BUCKETS[-1]} buckets step by {GRAPH_MAX_STEP})", lo=GRAPH_MAX_RANGE[0], hi=GRAPH_MAX_RANGE[1]),
        "timeline": Option("record each batch's start and end on the GPU (CUDA events) and report, for the latest run, the "
                           "share of the time the GPU held a batch and the idle gaps between batches", choices=FLAGS),
        "kept_fp32": Option("how a 16-bit build runs the matmuls of the parts it keeps in fp32 (dlrm-v3's MLPs): tf32 (default) or fp32",
                            choices=KEPT_FP32_MATH),
    }

    @classmethod
    def unavailable_reason(cls) -> str | None:
        if not torch.cuda.is_available():
            return f"no CUDA GPU visible to torch {torch.__version__}"
        return None

    def _option(self, key: str, default: str) -> str:
        """Option ``key``: the user's, else the model's measured default (:data:`MODEL_PRECISION_OPTIONS`,
        then :data:`MODEL_OPTIONS`), else ``default``."""
        name, precision = self.config.model.name, self.config.precision
        measured = {**MODEL_OPTIONS.get(name, {}), **MODEL_PRECISION_OPTIONS.get((name, precision), {})}
        return self.config.option(key, measured.get(key, default))

    def _options(self) -> None:
        cfg = self.config
        self.check_options(cfg.options)
        self._compile = _flag(cfg.option("compile", "0"), "compile")
        self._graphs = _flag(cfg.option("cuda_graphs", "0" if self._compile else "1"), "cuda_graphs")
        self._from_device = _flag(cfg.option("start_from_device", "0"), "start_from_device")
        self._staging = self._option("staging", STAGINGS[0])
        self._dma_calls = cfg.option("dma", DMA_CALLS[0])
        if "dma" in dict(cfg.options) and (self._staging != "dma" or self._from_device):
            given = "" if "staging" in dict(cfg.options) else f" ({cfg.model.name}'s default; add --option staging=dma)"
            raise ConfigError(f"'dma' applies to staging=dma, not to staging={self._staging}{given}" if self._staging != "dma"
                              else "'dma' applies to staging=dma, and start_from_device=1 stages nothing from the host")
        self._counts_from = cfg.option("counts", COUNTS_FROM[0])
        #: The model lays out jagged requests from their counts (dlrm-v3): option ``counts`` applies.
        self._jagged = hasattr(cfg.model.config.module_class(), "tokens")
        if "counts" in dict(cfg.options) and not self._jagged:
            raise ConfigError(f"'counts' applies to dlrm-v3, whose requests are jagged, not to {cfg.model.name}")
        self._sync = cfg.option("sync", SYNCS[0])
        self._timeline = Timeline() if _flag(cfg.option("timeline", "0"), "timeline") else None
        largest = int(self._option("graph_max", str(GRAPH_BUCKETS[-1])))
        if largest % 4096:
            raise ConfigError(f"'graph_max' must be a multiple of 4096 (got {largest})")
        for key in ("attention", "attention_out", "projections"):
            if key in dict(cfg.options) and not self._jagged:
                raise ConfigError(f"'{key}' applies to dlrm-v3's fused STU layers, not to {cfg.model.name}")
        if "graph_max" in dict(cfg.options) and (self._jagged or not self._graphs):
            raise ConfigError("'graph_max' applies to CUDA graphs of batches of items, not to "
                              + (f"{cfg.model.name}, whose graphs are per request count" if self._jagged else "cuda_graphs=0"))
        #: Batch sizes CUDA graphs are captured for (graph_buckets); a batch is padded to the next.
        self._buckets = graph_buckets(largest)
        lanes = REQUEST_LANES if cfg.model.name in MAX_BATCH_SAMPLES else self.default_workers
        self._lane_count = int(self._option("lanes", str(lanes)))
        self._compute_mode = cfg.option("compute", "shared" if cfg.model.name in SHARED_COMPUTE_BY_DEFAULT else "lanes")
        #: What the fp32 matmuls of a 16-bit build run in (None: the build has none).
        self._fp32_matmuls: str | None = None
        if cfg.precision in ("bf16", "fp16") and getattr(cfg.model.config.module_class(), "KEEP_FP32", ()):
            self._fp32_matmuls = cfg.option("kept_fp32", KEPT_FP32_MATH[0])
        elif "kept_fp32" in dict(cfg.options):
            raise ConfigError(f"'kept_fp32' applies to a bf16 or fp16 build of a model that keeps parts in fp32 "
                              f"(dlrm-v3), not to {cfg.model.name} in {cfg.precision}")

    def load(self) -> None:
        cfg = self.config
        self._options()
        if cfg.precision not in DTYPES:
            raise BackendUnavailableError(f"'precision' must be one of {sorted(DTYPES)} on torch-cuda (got {cfg.precision!r})")
        if not torch.cuda.is_available():
            raise BackendUnavailableError(
                f"torch-cuda needs a CUDA GPU, and torch {torch.__version__} sees none here "
                f"(built with CUDA {torch.version.cuda})"
            )
        started = time.perf_counter()
        if cfg.model.name == "dlrm-v3" and cfg.precision == "fp8":
            raise BackendUnavailableError("dlrm-v3 runs fp32, tf32, bf16 or fp16 on torch-cuda (got 'fp8': its fp8 kernels are DLRM-v2's)")
        self._device = torch.device(cfg.option("device", "cuda:0"))
        self._dtype = DTYPES[cfg.precision]
        torch.set_num_threads(1)
        self._schema = cfg.model.schema
        self._layout = PackedLayout.of(self._schema)
        self._tasks = self._schema.tasks
        # Process-wide flags (torch has no narrower switch): the backend owns its process's GPU work.
        self._tf32_before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
        tf32 = cfg.precision == "tf32" or self._fp32_matmuls == "tf32"
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = tf32
        model = build(cfg.model, device=self._device, dtype=self._dtype)
        self._batch_cap = _batch_cap(cfg.model)
        self._graph_error: str | None = None
        self._fused: dict[str, Any] | None = None
        fused_default = "1" if cfg.model.name in FUSED_BY_DEFAULT.get(cfg.precision, ()) else "0"
        if cfg.precision == "fp8" or _flag(cfg.option("fused", fused_default), "fused"):
            from suite.backends.kernels.fused import for_backend

            model = for_backend(model, cfg.model, cfg.precision, dict(cfg.options))
            self._fused = model.describe()
        else:
            for key in ("attention", "attention_out", "projections"):
                if key in dict(cfg.options):
                    raise ConfigError(f"'{key}' applies to the fused STU layers (fused=1), not to {cfg.model.name}'s plain path")
        #: dlrm-v3's graphs: how a batch is padded to one's shapes (counts from the host only).
        self._padding: Any = None
        self._keys: list[tuple[int, int, int]] = []
        if self._graphs and not getattr(model, "graph_safe", True):
            # dlrm-v3 packs each batch's real tokens: shapes that depend on the data. A graph per
            # size and rounded totals replays them, but only with the counts known on the host.
            why = self._jagged_graphs_refused(model)
            if why is None:
                from suite.models.dlrm_v3 import Padding

                history = self._schema.dense - self._tasks
                self._padding = Padding(history, self._tasks, max(1, history // JAGGED_STEPS), max(1, self._tasks // JAGGED_STEPS))
            elif "cuda_graphs" in dict(cfg.options):
                raise ConfigError(f"'cuda_graphs' 1 does not apply to {cfg.model.name} {why}")
            else:
                self._graphs, self._graph_error = False, f"{cfg.model.name} {why}"
        for module in model.modules():
            if isinstance(module, torch.nn.RNNBase):
                module.flatten_parameters()
        #: dlrm-v3 with counts from the host: lays a batch's tokens out on the GPU from each
        #: request's counts, which the dataset holds, instead of counting them there and reading
        #: them back (a sync mid-forward).
        self._tokens: Callable[[torch.Tensor, Any], Any] | None = (  # (counts, Extent) -> Tokens
            getattr(model, "tokens", None) if self._counts_from == "host" else None)
        self._request_counts: np.ndarray | None = None
        self._model: Any = torch.compile(model, dynamic=True) if self._compile else model
        self._packed_source: Batch | None = None
        self._packed: np.ndarray | None = None
        self._dev_packed: torch.Tensor | None = None
        #: With dma or mapped staging: the pinned packed dataset (mapped: ``_dev_packed`` is the
        #: device's view of it; dma: ``_dma`` copies its spans).
        self._pinned: torch.Tensor | None = None
        self._dma: SpanDMA | None = None
        self._staging_note: str | None = None
        self._load_s = time.perf_counter() - started
        started = time.perf_counter()
        self._pool: queue.SimpleQueue[_Lane] = queue.SimpleQueue()
        with torch.cuda.device(self._device):
            self._shared_stream = torch.cuda.Stream() if self._compute_mode == "shared" else None
        self._lanes = [self._new_lane(self._lane_rows()) for _ in range(self._lane_count)]
        self._bucket_ms: dict[int, float] = {}
        #: What each timed request bucket's batch held, in multiply-adds (jagged dlrm-v3 only).
        self._bucket_work: dict[int, float] = {}
        torch.cuda.synchronize(self._device)
        if self._graphs:
            try:
                for lane in self._lanes:
                    self._capture(lane)
            except Exception as exc:
                if "cuda_graphs" in dict(cfg.options):
                    raise BackendError(f"torch-cuda could not capture a CUDA graph of {cfg.model.name}: {exc}") from exc
                self._graphs, self._graph_error, self._padding = False, f"{type(exc).__name__}: {exc}", None
                torch.cuda.synchronize(self._device)
                self._lanes = [self._new_lane(self._lane_rows()) for _ in range(self._lane_count)]
            else:
                if self._padding is None:
                    self._time_buckets(self._lanes[0])
        if self._sized_by_requests:
            self._time_requests(self._lanes[0])
        for lane in self._lanes:
            self._pool.put(lane)
        self._capture_s = time.perf_counter() - started

    @property
    def _sized_by_requests(self) -> bool:
        """Whether the batcher's sizes come from timing batches of requests as predict runs them (a
        model under a batch cap, eager or with jagged graphs), not from fixed-shape graph replays."""
        return self._batch_cap is not None and (not self._graphs or self._padding is not None)

    def _jagged_graphs_refused(self, model: Any) -> str | None:
        """Why a jagged model's batches cannot replay graphs here (None: they can): with
        counts=device each batch reads its sizes back mid-forward; the plain attention pads every
        request of a graph to the widest, (L, L) scores a head, too large above
        :data:`PLAIN_GRAPH_TOKENS` (MLPerf's 11,265: gigabytes a request)."""
        if self._counts_from != "host":
            return "with counts=device: each batch reads its sizes back mid-forward, which a graph cannot capture"
        widest = int(getattr(model, "max_tokens", 0))
        if self._fused is None and widest > PLAIN_GRAPH_TOKENS:
            return (f"with the plain attention at {widest:,} tokens a request: a graph pads every request to that "
                    f"(graphs up to {PLAIN_GRAPH_TOKENS:,}; the fused attention has them at any size)")
        return None

    def _lane_rows(self) -> int:
        """Rows a lane stages: the largest graph bucket, or the model's batch cap when it has one
        (a dlrm-v3 row at MLPerf's size is 209 KB; 16,384 of them would be 3.4 GB per lane), plus
        the padding request's row with jagged graphs."""
        if self._padding is not None and self._batch_cap is not None:
            return self._batch_cap + 1
        if self._graphs or self._batch_cap is None:
            return self._buckets[-1]
        return self._batch_cap

    def _new_lane(self, capacity: int) -> _Lane:
        words = self._layout.words
        out_shape = (capacity,) if self._tasks == 1 else (capacity, self._tasks)
        with torch.cuda.device(self._device):
            # Zeroed, not empty: a graph reads the padding rows past the batch, and garbage ids
            # there would index outside the tables. Later padding rows hold earlier items: valid.
            host = torch.zeros((capacity, words), dtype=torch.int32, pin_memory=True)
            host_rows = torch.zeros(capacity, dtype=torch.int64, pin_memory=True)
            return _Lane(
                copy=torch.cuda.Stream(),
                compute=self._shared_stream or torch.cuda.Stream(),
                done=torch.cuda.Event(blocking=self._sync == "block"),
                capacity=capacity,
                host=host,
                stage=host.numpy(),
                dev=torch.zeros((capacity, words), dtype=torch.int32, device=self._device),
                host_out=torch.empty(out_shape, dtype=torch.float32, pin_memory=True),
                host_rows=host_rows,
                stage_rows=host_rows.numpy(),
                dev_rows=torch.zeros(capacity, dtype=torch.int64, device=self._device),
                counts_host=torch.zeros((2, capacity), dtype=torch.int64, pin_memory=True) if self._tokens is not None else None,
                counts_dev=torch.zeros((2, capacity), dtype=torch.int64, device=self._device) if self._tokens is not None else None,
            )

    def _forward(self, rows: torch.Tensor, tokens: Any = None) -> torch.Tensor:
        dense, sparse = self._layout.unpack(rows)
        # The fused lookup reads every table's ids as one (N, sum L) matrix: in a packed row they
        # already are one, so it gets that view instead of a concatenation.
        # dlrm-v3's fused model (its attention is the fused part) reads the tables' ids apart.
        packed = self._fused is not None and self._fused.get("ids") != "tables"
        ids = rows[:, self._layout.dense :] if packed else sparse
        logits = self._model(dense.to(self._dtype), ids) if tokens is None else self._model(dense.to(self._dtype), ids, tokens=tokens)
        return torch.sigmoid(logits.float())

    def _counts(self, batch: Batch) -> np.ndarray:
        """(2, N): each request's real history events and candidates, from the attached dataset's
        counts for a batch of its rows, else from the batch's own dense rows."""
        counts = self._request_counts
        if counts is not None and batch.source is not None and batch.source is self._packed_source:
            return span_columns(counts, batch.spans)
        return self._counts_of(batch.dense)

    def _counts_of(self, dense: np.ndarray) -> np.ndarray:
        """(2, N) :func:`~suite.models.dlrm_v3.request_counts` of dense rows of this model."""
        from suite.models.dlrm_v3 import request_counts

        return request_counts(dense, self._schema.dense - self._tasks)

    def _tokens_on_device(self, counts: np.ndarray, lane: _Lane) -> Any:
        """The batch's token layout on the device from ``counts`` (2, N), sent through ``lane``'s
        pinned words on the current stream (the lane reuses them only once its batch is answered)."""
        assert self._tokens is not None
        n = counts.shape[1]
        assert lane.counts_host is not None and lane.counts_host.numel() >= 2 * n  # made with the lane, as wide
        # Contiguous: a strided pinned source would be copied to pageable memory first.
        host = lane.counts_host.view(-1)[: 2 * n].view(2, n)
        host.numpy()[:] = counts
        from suite.models.dlrm_v3 import Extent

        return self._tokens(host.to(self._device, non_blocking=True), Extent.of(counts))

    def _capture(self, lane: _Lane) -> None:
        """One graph per bucket on ``lane``, largest first, sharing one memory pool (a lane
        replays one graph at a time)."""
        if self._padding is not None:
            self._capture_jagged(lane, first=lane is self._lanes[0])
            return
        pool = torch.cuda.graph_pool_handle()
        with torch.inference_mode():
            for size in sorted(self._buckets, reverse=True):
                rows = lane.dev[:size]
                with torch.cuda.stream(lane.compute):
                    for _ in range(2):
                        self._forward(rows)
                lane.compute.synchronize()
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph, pool=pool, stream=lane.compute, capture_error_mode="thread_local"):
                    out = self._forward(rows)
                lane.graphs[size] = (graph, out)
        torch.cuda.synchronize(self._device)

    def _jagged_keys(self) -> list[tuple[int, int, int]]:
        """The keys of the jagged graphs to capture, largest first: every batch size up to
        :data:`JAGGED_GRAPH_REQUESTS` (and the cap) with at most :data:`JAGGED_MAX_KEYS` of them, the
        totals of batches of requests drawn as the dataset's."""
        assert self._padding is not None and self._batch_cap is not None
        sample = self._counts_of(self._layout.unpack(self._timing_rows(JAGGED_SAMPLE))[0])
        keys = []
        for size in range(min(self._batch_cap, JAGGED_GRAPH_REQUESTS), 0, -1):
            some = self._padding.keys(sample, size, JAGGED_SPREAD)
            if len(some) <= JAGGED_MAX_KEYS:
                keys += some
        return keys

    def _capture_jagged(self, lane: _Lane, first: bool) -> None:
        """dlrm-v3's graphs on ``lane``, one per key (:meth:`_jagged_keys`), sharing one memory
        pool. Each reads the lane's rows and padded counts (``counts_dev``); on the ``first`` lane
        every key runs eagerly once before (the kernels' shapes compile outside a capture)."""
        assert self._padding is not None and lane.counts_host is not None and lane.counts_dev is not None
        if first:
            self._keys = self._jagged_keys()
        pool = torch.cuda.graph_pool_handle()
        history, candidates = self._padding.history, self._padding.candidates

        def even(total: int, n: int) -> list[int]:
            q, r = divmod(total, n)
            return [q + 1] * r + [q] * (n - r)

        with torch.inference_mode(), torch.cuda.stream(lane.compute):
            for key in self._keys:
                n, th, tc = key
                counts = np.array([even(min(th, n * history), n), even(min(tc, n * candidates), n)], dtype=np.int64)
                assert self._padding.key(counts) == key, (key, counts)
                lane.counts_host.numpy()[:, : n + 1] = self._padding.padded(counts)
                lane.counts_dev.copy_(lane.counts_host)
                extent = self._padding.extent(key)
                rows = lane.dev[: n + 1]
                assert self._tokens is not None
                if first or key == self._keys[0]:
                    self._forward(rows, self._tokens(lane.counts_dev[:, : n + 1], extent))
                    lane.compute.synchronize()
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph, pool=pool, stream=lane.compute, capture_error_mode="thread_local"):
                    out = self._forward(rows, self._tokens(lane.counts_dev[:, : n + 1], extent))
                lane.graphs[key] = (graph, out)
        torch.cuda.synchronize(self._device)

    def _time_buckets(self, lane: _Lane, repeats: int = 5) -> None:
        """GPU milliseconds of one replay per bucket: what batch_defaults sizes a Server batch by."""
        with torch.cuda.stream(lane.compute):
            for size, (graph, _) in sorted(lane.graphs.items()):
                graph.replay()
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                for _ in range(repeats):
                    graph.replay()
                end.record()
                end.synchronize()
                self._bucket_ms[size] = start.elapsed_time(end) / repeats

    def _timing_rows(self, n: int) -> np.ndarray:
        """``n`` packed rows to time batches on and to draw jagged graphs' totals from: requests
        drawn as the dataset's are (dlrm-v3's jagged lengths: a batch of the widest requests, 9,216
        events each, would overstate a real one's time, about 6,750), else zeros."""
        spec = self.config.model
        from suite.models.configs import DLRMv3Config

        if isinstance(spec.config, DLRMv3Config):
            from suite.datasets import streaming

            drawn = streaming.features(spec.config, spec, n, np.random.default_rng(0))
            return self._layout.pack(drawn.dense, drawn.sparse)
        return np.zeros((n, self._layout.words), dtype=np.int32)

    def _time_requests(self, lane: _Lane, repeats: int = 3) -> None:
        """Wall milliseconds of one batch as predict runs it (staged rows to scores on the host: a
        jagged graph's replay if there is one, else eager) per request bucket up to the batch cap,
        and per size with jagged graphs: what the batcher sizes a batch by for a model under a
        batch cap (:func:`request_server_batching`, :func:`request_offline_batching`)."""
        cap = lane.capacity if self._batch_cap is None else min(self._batch_cap, lane.capacity)
        graphed = {key[0] for key in lane.graphs} if self._padding is not None else set()
        sizes = sorted({size for size in REQUEST_BUCKETS if size < cap} | {cap} | graphed)
        lane.stage[:cap] = self._timing_rows(cap)
        lane.dev[:cap].copy_(lane.host[:cap])
        torch.cuda.synchronize(self._device)
        request_macs = getattr(self.config.model.config, "request_macs", None)
        jagged = self._tokens is not None or request_macs is not None
        rows_counts = self._counts_of(self._layout.unpack(lane.stage[:cap])[0]) if jagged else None
        counts = rows_counts if self._tokens is not None else None
        macs = request_macs(*rows_counts) if request_macs is not None and rows_counts is not None else None

        def forward(size: int) -> torch.Tensor:  # as predict runs it
            return self._launch(lane, size, None if counts is None else counts[:, :size])[:size]

        with torch.inference_mode(), torch.cuda.stream(lane.compute):
            for size in sizes:
                forward(size).cpu()  # compiles the kernels for this size first
                started = time.perf_counter()
                for _ in range(repeats):
                    forward(size).cpu()
                self._bucket_ms[size] = (time.perf_counter() - started) * 1000 / repeats
                if macs is not None:
                    self._bucket_work[size] = float(macs[:size].sum())
        lane.host.zero_()
        lane.dev.zero_()
        lane.replayed = lane.eager = 0
        torch.cuda.synchronize(self._device)

    def batch_defaults(self, scenario: str, target_latency_ns: int) -> BatchDefaults:
        """The batcher :func:`~suite.backends.base.accelerator_batching` picks from the measured
        replay time of every captured bucket (Offline: the largest bucket, no wait; Server: the
        largest bucket within an eighth of the latency bound, waiting one replay for it to fill, at
        most ``in_flight`` batches at once); without graphs, 2,048 items in Server. A model under a
        batch cap (dlrm-v3, jagged graphs or eager) gets, in Offline, the timed size that did the most
        work a millisecond (:func:`request_offline_batching`); in Server, the largest timed size
        within :data:`REQUEST_SERVER_SHARE` of the bound and :data:`SERVER_MIN_RATE` of the best
        rate, no wait, :data:`REQUEST_SERVER_IN_FLIGHT` batches at once (option ``in_flight``)."""
        if self._sized_by_requests and self._bucket_ms:
            if scenario.lower() == "offline":
                return request_offline_batching(self._bucket_ms, self._lane_count, self._bucket_work or None)
            in_flight = int(self._option("in_flight", str(REQUEST_SERVER_IN_FLIGHT)))
            return request_server_batching(target_latency_ns, self._bucket_ms, self._lane_count, in_flight)
        in_flight = int(self._option("in_flight", str(SERVER_IN_FLIGHT)))
        defaults = accelerator_batching(scenario, target_latency_ns, self._bucket_ms, self._lane_count, in_flight=in_flight)
        cap = self._batch_cap
        if cap is not None and defaults.max_batch_items > cap:
            defaults = dataclasses.replace(defaults, max_batch_items=cap)
        return defaults

    def begin_run(self) -> None:
        """The timeline (``--option timeline=1``) starts over: it reports this run's batches."""
        if self._timeline is not None:
            self._timeline.restart()

    def attach_items(self, items: Batch) -> None:
        """Pack the dataset's items once, and give the GPU a view of them: in pinned host memory
        (``staging=mapped``) or, with ``start_from_device``, in device memory."""
        if items is self._packed_source:
            return
        self._packed = self._layout.pack(items.dense, items.sparse)
        if self._tokens is not None:
            self._request_counts = self._counts_of(items.dense)
        self._dev_packed = self._pinned = self._dma = None
        self._staging_note = None
        for lane in self._lanes:
            lane.stage_rows[:] = 0  # padding rows must index this dataset
        if self._from_device:
            self._dev_packed = torch.from_numpy(self._packed).to(self._device)
        elif self._staging != "copy":
            self._pin(self._packed)
        torch.cuda.synchronize(self._device)
        self._packed_source = items

    def _pin(self, packed: np.ndarray) -> None:
        """Pin ``packed`` (the pinned copy then serves host gathers too). For mapped staging, make
        ``_dev_packed`` the device's view of that host memory (pinned memory is addressable from
        the GPU at its host address under unified addressing), checked against the host rows; for
        dma, the span copier. Where pinning or the view fails, staging falls back to copy and
        ``staging_note`` says why."""
        if packed.nbytes > MAPPED_MAX_BYTES:
            self._staging_note = (f"copy: the packed dataset ({packed.nbytes / 2**30:.1f} GiB) is over the "
                                  f"{MAPPED_MAX_BYTES >> 30} GiB pinned for {self._staging} staging")
            return
        try:
            pinned = torch.empty(packed.shape, dtype=torch.int32, pin_memory=True)
            pinned.numpy()[:] = packed
        except Exception as exc:
            self._staging_note = f"copy: pinning the packed dataset failed ({type(exc).__name__}: {exc})"
            return
        self._packed = pinned.numpy()
        if self._staging == "dma":
            batch = cudart_memcpy_batch_async() if self._dma_calls == "batch" else None
            self._pinned, self._dma = pinned, SpanDMA(pinned, cudart_memcpy_async(), batch)
            if not self._dma.native:
                self._staging_note = "dma: the CUDA runtime was not found through ctypes; each span is a torch copy"
            elif self._dma_calls == "batch" and batch is None:
                self._staging_note = "dma: this CUDA runtime has no cudaMemcpyBatchAsync (12.8 and later); one cudaMemcpyAsync a span"
            else:
                self._staging_note = self._dma.check_batch(self._device)
            return
        try:
            view = torch.as_tensor(HostView(pinned), device=self._device)
            probe = torch.tensor([0, len(packed) - 1], device=self._device)
            if not torch.equal(view.index_select(0, probe).cpu(), pinned[[0, len(packed) - 1]]):
                raise BackendError("the device's view of pinned memory reads other values than the host's")
        except Exception as exc:
            self._staging_note = f"copy: mapped staging failed ({type(exc).__name__}: {exc})"
            return
        self._pinned, self._dev_packed = pinned, view

    def _stage(self, batch: Batch, lane: _Lane, n: int, size: int) -> str:
        """Put the batch's packed rows into ``lane.dev[:size]`` (on the copy stream); how: "device",
        "dma" or "host" (gathered or packed on the host, then one copy)."""
        packed = self._packed
        whole = batch.source is not None and batch.source is self._packed_source and packed is not None
        # Only the batch's n rows reach the device here: its padding rows up to ``size`` still
        # hold earlier items of this dataset (or zeros), which index inside the tables.
        if whole and self._dev_packed is not None:
            span_rows(batch.spans, lane.stage_rows[:n])
            with torch.cuda.stream(lane.copy):
                lane.dev_rows[:n].copy_(lane.host_rows[:n], non_blocking=True)
                torch.index_select(self._dev_packed, 0, lane.dev_rows[:n], out=lane.dev[:n])
            return "device"
        if whole and self._dma is not None and n * self._dma.row_bytes >= DMA_MIN_SPAN_BYTES * len(batch.spans):
            with torch.cuda.device(self._device):
                self._dma.copy(batch.spans, lane.dev, lane.copy)
            return "dma"
        if whole:
            assert packed is not None
            np.concatenate([packed[lo:hi] for lo, hi in batch.spans], out=lane.stage[:n])
        else:
            self._layout.pack(batch.dense, batch.sparse, out=lane.stage)
        with torch.cuda.stream(lane.copy):
            lane.dev[:size].copy_(lane.host[:size], non_blocking=True)
        return "host"

    def _launch(self, lane: _Lane, n: int, counts: np.ndarray | None) -> torch.Tensor:
        """Run the batch staged in ``lane.dev[:n]`` on the current stream, eagerly, or for a
        jagged model with ``counts`` (2, n) as the graph of its totals where there is one (its
        padded counts sent first); the scores' first n rows are the batch's."""
        if counts is not None and self._padding is not None:
            entry = lane.graphs.get(self._padding.key(counts)) if n < lane.capacity else None
            if entry is not None:
                assert lane.counts_host is not None and lane.counts_dev is not None
                self._padding.padded(counts, out=lane.counts_host.numpy()[:, : n + 1])
                lane.counts_dev.copy_(lane.counts_host, non_blocking=True)
                entry[0].replay()
                lane.replayed += 1
                return entry[1]
            lane.eager += 1
        tokens = None if counts is None else self._tokens_on_device(counts, lane)
        return self._forward(lane.dev[:n], tokens)

    def predict(self, batch: Batch) -> np.ndarray:
        n = len(batch)
        asked = time.perf_counter()
        lane = self._pool.get()
        try:
            t0 = time.perf_counter()
            graphed = self._graphs and self._padding is None and n <= self._buckets[-1]
            size = bucket(n, self._buckets) if graphed else n
            work = lane
            if lane.capacity < size:
                if lane.overflow is None or lane.overflow.capacity < size:
                    lane.overflow = self._new_lane(max(size, 2 * lane.capacity))
                work = lane.overflow
            how = self._stage(batch, work, n, size)
            lane.staged[how] = lane.staged.get(how, 0) + 1
            t1 = time.perf_counter()
            counts = self._counts(batch) if self._tokens is not None and not graphed else None
            with torch.inference_mode():
                work.compute.wait_stream(work.copy)
                with torch.cuda.stream(work.compute):
                    began = self._timeline.start(work.compute) if self._timeline is not None else None
                    if graphed:
                        graph, out = work.graphs[size]
                        graph.replay()
                    else:
                        out = self._launch(work, n, counts)
                    work.host_out[:n].copy_(out[:n], non_blocking=True)
                    if self._timeline is not None:
                        self._timeline.end(began, work.compute, n, size)
                    work.done.record()
                # The next staging into this lane's buffers waits for this batch to have read them.
                work.copy.wait_event(work.done)
                t2 = time.perf_counter()
                lane.steps_s[:3] += (t0 - asked, t1 - t0, t2 - t1)
                lane.batches += 1
                work.done.synchronize()
            scores = work.host_out[:n].numpy().copy()
            lane.steps_s[3] += time.perf_counter() - t2
            return scores
        finally:
            self._pool.put(lane)

    @property
    def staging(self) -> str:
        """How batches reach the device: device (start_from_device), dma, mapped or copy (asked
        for, or what dma and mapped fall back to; ``staging_note`` then says why). Before a dataset
        is attached, the staging asked for."""
        if self._from_device:
            return "device"
        if self._dma is not None:
            return "dma"
        if self._pinned is not None:
            return "mapped"
        return self._staging if self._packed_source is None else "copy"

    def info(self) -> BackendInfo:
        props = torch.cuda.get_device_properties(self._device)
        batches = sum(lane.batches for lane in self._lanes)
        steps = sum((lane.steps_s for lane in self._lanes), np.zeros(len(PREDICT_STEPS)))
        host_s = float(steps[PREDICT_STEPS.index("stage")] + steps[PREDICT_STEPS.index("launch")])
        return BackendInfo(
            name=self.name,
            version=torch.__version__,
            device=f"{props.name} ({props.total_memory / 2**30:.0f} GiB)",
            precision=self.config.precision,
            threads=1,
            accelerator_model=props.name,
            accelerator_memory_bytes=int(props.total_memory),
            extra={
                "cuda": torch.version.cuda,
                "cuda_graphs": self._graphs,
                **({"graph_error": self._graph_error} if self._graph_error else {}),
                "graph_buckets": list(self._buckets) if self._graphs and self._padding is None else [],
                **({"jagged_graphs": self._jagged_graphs()} if self._padding is not None else {}),
                "compile": self._compile,
                "fused": self._fused,
                "lanes": self._lane_count,
                "compute": self._compute_mode,
                "sync": self._sync,
                "fp32_matmuls": self._fp32_matmuls,
                **({"counts": self._counts_from} if self._jagged else {}),
                "start_from_device": self._from_device,
                "staging": self.staging,
                "dma_calls": self._dma.calls if self._dma is not None else None,
                **({"staging_note": self._staging_note} if self._staging_note else {}),
                **({"gpu_timeline": self._timeline.summary()} if self._timeline is not None else {}),
                "staged_batches": {how: sum(lane.staged.get(how, 0) for lane in self._lanes) for how in ("dma", "device", "host")},
                "load_s": round(self._load_s, 3),
                "capture_s": round(self._capture_s, 3),
                "bucket_ms": {str(k): round(v, 4) for k, v in sorted(self._bucket_ms.items())},
                **({"bucket_tmac": {str(k): round(v / 1e12, 4) for k, v in sorted(self._bucket_work.items())}}
                   if self._bucket_work else {}),
                "host_us_per_batch": round(1e6 * host_s / batches, 1) if batches else None,
                "predict_us_per_batch": dict(zip(PREDICT_STEPS, (round(1e6 * float(v) / batches, 1) for v in steps), strict=True))
                if batches else None,
            },
        )

    def _jagged_graphs(self) -> dict[str, Any]:
        """What the jagged graphs cover and how many batches replayed one (the rest ran eagerly)."""
        sizes = sorted({key[0] for key in self._lanes[0].graphs}) if self._lanes else []
        return {"graphs_per_lane": len(self._lanes[0].graphs) if self._lanes else 0, "sizes": sizes,
                "history_step": self._padding.history_step, "candidate_step": self._padding.candidate_step,
                "replayed": sum(lane.replayed for lane in self._lanes), "eager": sum(lane.eager for lane in self._lanes)}

    def close(self) -> None:
        self._lanes = []
        self._pool = queue.SimpleQueue()
        self._model = None
        self._dev_packed = self._pinned = self._dma = None
        if hasattr(self, "_tf32_before"):
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = self._tf32_before
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
