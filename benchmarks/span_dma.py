"""Host and GPU time of staging one batch by DMA from the pinned dataset (torch-cuda's default
``staging=dma``): one ``cudaMemcpyAsync`` a span against one ``cudaMemcpyBatchAsync`` for all of
them, at DLRM-v2 Server's shape (about 105 samples of about 270 packed rows a batch).

Host time is what ``SpanDMA.copy`` takes to return; GPU time is CUDA events around the copies,
with the stream kept busy first so that the host's enqueueing is not what the events time.

    python3 benchmarks/span_dma.py [--spans 105] [--rows-per-span 270] [--words 227] [--repeats 2000]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from suite.backends.packed import SpanDMA, cudart_memcpy_async, cudart_memcpy_batch_async


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--spans", type=int, default=105)
    ap.add_argument("--rows-per-span", type=int, default=270)
    ap.add_argument("--words", type=int, default=227, help="int32 words a packed row (DLRM-v2: 13 dense + 214 ids)")
    ap.add_argument("--dataset-rows", type=int, default=1 << 20)
    ap.add_argument("--repeats", type=int, default=2000)
    args = ap.parse_args()
    pinned = torch.empty((args.dataset_rows, args.words), dtype=torch.int32, pin_memory=True)
    pinned.numpy()[:] = np.arange(args.words, dtype=np.int32)
    rng = np.random.default_rng(0)
    n = args.spans * args.rows_per_span
    dev = torch.empty((n, args.words), dtype=torch.int32, device="cuda")
    stream = torch.cuda.Stream()
    ways = {"span": SpanDMA(pinned, cudart_memcpy_async()), "batch": SpanDMA(pinned, cudart_memcpy_async(), cudart_memcpy_batch_async())}
    print(f"CUDA {torch.version.cuda}; {args.spans} spans of {args.rows_per_span} rows x {args.words} words "
          f"({n * args.words * 4 / 2**20:.1f} MiB a batch); batched copies: {ways['batch'].calls}", flush=True)
    for name, dma in ways.items():
        note = dma.check_batch(torch.device("cuda"))
        if note:
            print(f"{name}: {note}")
        host_us, gpu_ms = [], []
        for i in range(args.repeats):
            starts = rng.integers(0, args.dataset_rows - args.rows_per_span, size=args.spans)
            spans = [(int(s), int(s) + args.rows_per_span) for s in starts]
            begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            with torch.cuda.stream(stream):
                torch.cuda._sleep(200_000)  # keeps the copy engine waiting while the host enqueues
                begin.record()
            t0 = time.perf_counter()
            dma.copy(spans, dev, stream)
            host_us.append((time.perf_counter() - t0) * 1e6)
            with torch.cuda.stream(stream):
                end.record()
            end.synchronize()
            if i >= 10:
                gpu_ms.append(begin.elapsed_time(end))
        host_us = host_us[10:]
        gbs = n * args.words * 4 / (statistics.median(gpu_ms) / 1e3) / 1e9
        print(f"{name:>5}: host {statistics.median(host_us):7.1f} us median (p90 {np.percentile(host_us, 90):7.1f}), "
              f"GPU {statistics.median(gpu_ms):.3f} ms median ({gbs:.1f} GB/s)", flush=True)


if __name__ == "__main__":
    main()
