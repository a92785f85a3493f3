"""When the GPU ran batches and when it sat idle between them (torch-cuda's ``--option timeline=1``).

A run's rate falls short of what its batches cost on the GPU alone (DLRM-v2 in fp8 through LoadGen
made 0.82x of the rate of back-to-back replays) either because each batch takes longer under load
or because the GPU waits between batches for the host. nvidia-smi's busy percentage cannot tell
the two apart; CUDA events around each batch's work on its stream can. :class:`Timeline` records a
pair of timing events per batch; :func:`busy_summary` turns the intervals into the share of the
time the GPU held a batch, the mean batch time, the idle gaps between batches, and what a batch
carried: its real items, the rows its graph bucket padded it to, and the GPU's time an item.

A :class:`Timeline` covers one run: the harness tells the backend when LoadGen's run begins
(``Backend.begin_run``) and the timeline starts over, so a run's figures hold none of the warm-up
before it or an earlier run's on the same load. (Before, a summary took the batches after the last
idle gap of :data:`WINDOW_GAP_MS`, and a 20-s Offline whose LoadGen start took 455 ms counted its
warm-up and that gap as the run's.) :func:`busy_summary` keeps that window for intervals of unknown
origin. Its ``series`` splits the window into :data:`SERIES_S` slices, so a rate that changes
during a run (a slow start, a card that heats) shows where.
"""

from __future__ import annotations

import collections
import math
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

#: An idle gap at least this long (ms) starts a new window: a pause between runs, not a run's own.
WINDOW_GAP_MS = 500.0
#: Batches a timeline keeps (the oldest are dropped): DLRM-v2's 300-s Server run has about 110,000.
KEPT_BATCHES = 400_000
#: Batches whose events are read once they are done, a few at a time, so that a timeline holds
#: numbers, not two CUDA events, for all but the latest batches.
PENDING_BATCHES = 64
#: The length of a slice of :attr:`BusySummary.series`, in seconds.
SERIES_S = 10.0


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
        series: per :data:`SERIES_S` slice of the window, ``[seconds from its start, batches begun
            in it, real items of those a second, busy share, busy ns an item]`` (items 0 when no
            sizes were given).
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
    series: tuple[tuple[float, int, float, float, float], ...] = ()


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
    items = None if sizes is None else [sizes[k][0] for k in ranked[first_batch[begin]:]]
    return BusySummary(batches=len(batches), span_ms=round(span, 3), busy_ms=round(busy, 3),
                       busy_share=round(busy / span, 4) if span > 0 else 1.0,
                       batch_ms_mean=round(float(np.mean([end - start for start, end in batches])), 4), gap_ms=stats,
                       items_mean=round(real / len(batches), 1), padded_share=round(1 - real / run, 4) if run else 0.0,
                       busy_ns_per_item=round(busy * 1e6 / real, 2) if real else 0.0,
                       series=_series(window, batches, items))


def _series(window: np.ndarray, batches: Sequence[tuple[float, float]],
            items: Sequence[int] | None) -> tuple[tuple[float, int, float, float, float], ...]:
    """:attr:`BusySummary.series` of a window: its merged busy intervals ``window`` (start, end ms,
    in order) and its batches (in order of start) with their real items."""
    slice_ms = SERIES_S * 1e3
    origin = float(window[0, 0])
    end = float(window[-1, 1])
    edges = np.arange(origin, end, slice_ms)
    starts = np.asarray([b[0] for b in batches], dtype=np.float64)
    counts = np.asarray(items if items is not None else np.zeros(len(batches)), dtype=np.float64)
    out = []
    for left in edges.tolist():  # plain floats, so the series prints and serializes as numbers
        right = min(left + slice_ms, end)
        busy = float(np.clip(np.minimum(window[:, 1], right) - np.maximum(window[:, 0], left), 0.0, None).sum())
        begun = (starts >= left) & (starts < right)
        real = float(counts[begun].sum())
        length_s = (right - left) / 1e3
        out.append((round((left - origin) / 1e3, 3), int(begun.sum()), round(real / length_s, 1) if length_s > 0 else 0.0,
                    round(busy / (right - left), 4) if right > left else 1.0, round(busy * 1e6 / real, 2) if real else 0.0))
    return tuple(out)


class Timeline:
    """A pair of CUDA timing events per batch, recorded on the stream that runs it, from any thread.

    ``start(stream)`` before a batch's work is queued, ``end(start_event, stream, items, rows)``
    after (the batch's real items and the rows run, padding included); the events are read only in
    :meth:`summary` (which waits for the last one), so recording costs two event records a batch
    and no synchronization.
    """

    def __init__(self, kept: int = KEPT_BATCHES) -> None:
        self._pairs: collections.deque[tuple[torch.cuda.Event, torch.cuda.Event, int, int]] = collections.deque()
        #: (start ms, end ms, items, rows) of the batches whose events were read, relative to ``_origin``.
        self._done: collections.deque[tuple[float, float, int, int]] = collections.deque(maxlen=kept)
        self._origin: torch.cuda.Event | None = None
        self._lock = threading.Lock()

    def start(self, stream: torch.cuda.Stream) -> torch.cuda.Event:
        return _recorded(stream)

    def end(self, start: torch.cuda.Event, stream: torch.cuda.Stream, items: int, rows: int) -> None:
        event = _recorded(stream)
        with self._lock:
            if self._origin is None:
                self._origin = start  # times relative to one event; an earlier one's come out negative
            self._pairs.append((start, event, items, rows))
            if len(self._pairs) >= PENDING_BATCHES:
                self._read(wait=False)

    def _read(self, wait: bool) -> None:
        """Move the oldest batches whose events are done (all of them, with ``wait``) into numbers."""
        assert self._origin is not None
        while self._pairs and (wait or self._pairs[0][1].query()):
            start, end, items, rows = self._pairs.popleft()
            end.synchronize()
            self._done.append((self._origin.elapsed_time(start), self._origin.elapsed_time(end), items, rows))

    def restart(self) -> None:
        """Forget every batch recorded so far (a run begins); their events are waited for first."""
        with self._lock:
            if self._origin is not None:
                self._read(wait=True)
            self._pairs.clear()
            self._done.clear()
            self._origin = None

    def summary(self) -> dict[str, Any] | None:
        """:func:`busy_summary` of the batches recorded since the last :meth:`restart`, every one of
        them (no window), as a dict for a result's record."""
        with self._lock:
            if self._origin is None:
                return None
            self._read(wait=True)
            done = list(self._done)
        found = busy_summary([(start, end) for start, end, _, _ in done], window_gap_ms=math.inf,
                             sizes=[(items, rows) for _, _, items, rows in done])
        return None if found is None else asdict(found)


def _recorded(stream: torch.cuda.Stream) -> torch.cuda.Event:
    """A timing event, recorded on ``stream``."""
    event = torch.cuda.Event(enable_timing=True)
    event.record(stream)
    return event
