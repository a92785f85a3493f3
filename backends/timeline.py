"""When the GPU ran batches and when it sat idle between them (torch-cuda's ``--option timeline=1``).

A run's rate falls short of what its batches cost on the GPU alone (DLRM-v2 in fp8 through LoadGen
made 0.82x of the rate of back-to-back replays) either because each batch takes longer under load
or because the GPU waits between batches for the host. nvidia-smi's busy percentage cannot tell
the two apart; CUDA events around each batch's work on its stream can. :class:`Timeline` records a
pair of timing events per batch; :func:`busy_summary` turns the intervals into the share of the
time the GPU held a batch, the mean batch time, the idle gaps between batches, and what a batch
carried: its real items, the rows its graph bucket padded it to, and the GPU's time an item.

A summary covers the latest *window*: the batches since the last idle gap of at least
:data:`WINDOW_GAP_MS`, so a run's figures are not diluted by the warm-up before it or an earlier
run on the same load.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

#: An idle gap at least this long (ms) starts a new window: a pause between runs, not a run's own.
WINDOW_GAP_MS = 500.0
#: Batches a timeline keeps (the oldest are dropped): about 30 s of DLRM-v2 Offline batches.
KEPT_BATCHES = 20_000


@dataclass(frozen=True)
class BusySummary:
    """The GPU's time over a window of batches (milliseconds).

    Attributes:
        batches: batches in the window.
        span_ms: from the first batch's start to the last one's end.
        busy_ms: time some batch held the GPU (overlapping batches counted once).
        busy_share: ``busy_ms / span_ms``.
        batch_ms_mean: mean time from a batch's start to its end.
        gap_ms: the idle gaps between batches: ``count``, ``p50``, ``p90``, ``p99``, ``max``, ``sum``.
        items_mean: mean real items a batch (0 when no sizes were given).
        padded_share: the share of the rows run that were padding up to a graph bucket.
        busy_ns_per_item: busy time over the window's real items: what an item cost the GPU.
    """

    batches: int
    span_ms: float
    busy_ms: float
    busy_share: float
    batch_ms_mean: float
    gap_ms: dict[str, float]
    items_mean: float = 0.0
    padded_share: float = 0.0
    busy_ns_per_item: float = 0.0


def busy_summary(intervals: Sequence[tuple[float, float]], window_gap_ms: float = WINDOW_GAP_MS,
                 sizes: Sequence[tuple[int, int]] | None = None) -> BusySummary | None:
    """The latest window of ``intervals`` ((start, end) in ms, any order, possibly overlapping):
    the batches after the last idle gap of at least ``window_gap_ms``. None without intervals.
    ``sizes``, one per interval: (real items, rows run), for the items and padding figures."""
    if not intervals:
        return None
    ranked = sorted(range(len(intervals)), key=lambda k: intervals[k])
    order = [intervals[k] for k in ranked]
    merged: list[list[float]] = []
    first_batch: list[int] = []  # index into ``order`` of each merged interval's first batch
    for i, (start, end) in enumerate(order):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
            first_batch.append(i)
    begin = 0
    for j in range(1, len(merged)):
        if merged[j][0] - merged[j - 1][1] >= window_gap_ms:
            begin = j
    window = np.asarray(merged[begin:], dtype=np.float64)
    batches = order[first_batch[begin]:]
    gaps = window[1:, 0] - window[:-1, 1]
    span = float(window[-1, 1] - window[0, 0])
    busy = float((window[:, 1] - window[:, 0]).sum())
    stats = {"count": float(len(gaps)), "sum": round(float(gaps.sum()), 3)}
    real = run = 0
    if sizes is not None:
        kept = np.asarray([sizes[k] for k in ranked[first_batch[begin]:]], dtype=np.int64).reshape(-1, 2)
        real, run = int(kept[:, 0].sum()), int(kept[:, 1].sum())
    if len(gaps):
        stats.update({f"p{q}": round(float(np.percentile(gaps, q)), 4) for q in (50, 90, 99)})
        stats["max"] = round(float(gaps.max()), 4)
    return BusySummary(batches=len(batches), span_ms=round(span, 3), busy_ms=round(busy, 3),
                       busy_share=round(busy / span, 4) if span > 0 else 1.0,
                       batch_ms_mean=round(float(np.mean([end - start for start, end in batches])), 4), gap_ms=stats,
                       items_mean=round(real / len(batches), 1), padded_share=round(1 - real / run, 4) if run else 0.0,
                       busy_ns_per_item=round(busy * 1e6 / real, 2) if real else 0.0)


class Timeline:
    """A pair of CUDA timing events per batch, recorded on the stream that runs it, from any thread.

    ``start(stream)`` before a batch's work is queued, ``end(start_event, stream, items, rows)``
    after (the batch's real items and the rows run, padding included); the events are read only in
    :meth:`summary` (which waits for the last one), so recording costs two event records a batch
    and no synchronization.
    """

    def __init__(self, kept: int = KEPT_BATCHES) -> None:
        self._pairs: collections.deque[tuple[torch.cuda.Event, torch.cuda.Event, int, int]] = collections.deque(maxlen=kept)
        self._lock = threading.Lock()

    def start(self, stream: torch.cuda.Stream) -> torch.cuda.Event:
        return _recorded(stream)

    def end(self, start: torch.cuda.Event, stream: torch.cuda.Stream, items: int, rows: int) -> None:
        event = _recorded(stream)
        with self._lock:
            self._pairs.append((start, event, items, rows))

    def summary(self) -> dict[str, Any] | None:
        """:func:`busy_summary` of the recorded batches, as a dict for a result's record."""
        with self._lock:
            pairs = list(self._pairs)
        if not pairs:
            return None
        for _, end, _, _ in pairs:
            end.synchronize()
        origin = pairs[0][0]  # times relative to one event; an earlier one's come out negative
        found = busy_summary([(origin.elapsed_time(start), origin.elapsed_time(end)) for start, end, _, _ in pairs],
                             sizes=[(items, rows) for _, _, items, rows in pairs])
        return None if found is None else asdict(found)


def _recorded(stream: torch.cuda.Stream) -> torch.cuda.Event:
    """A timing event, recorded on ``stream``."""
    event = torch.cuda.Event(enable_timing=True)
    event.record(stream)
    return event
