"""How soon an Offline query reaches the batcher's workers: LoadGen issues one query of every
sample; the harness puts it in sweeps and cuts it into batch-sized chunks before a worker can
start. Times ``Batcher.issue`` for a query of ``--samples`` samples over a library of
``--queries`` MLPerf-sized queries: until the first chunk is queued, and until the whole query is;
and the longest another thread waited meanwhile (a thread that sleeps 0.5 ms at a time, as the
device's lanes wait for the GIL to launch a batch while the feed runs).

    python3 benchmarks/offline_feed.py [--samples 800000] [--queries 485] [--batch-items 32768]
        [--harness OLD/suite/harness.py]   # another version of the module, loaded in its place
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import threading
import time
from pathlib import Path

import numpy as np

from suite import harness
from suite.backends.base import BackendConfig
from suite.backends.null import NullBackend
from suite.datasets.batch import Batch
from suite.datasets.library import QueryLibrary
from suite.datasets.queries import QuerySizes
from suite.datasets.store import Dataset
from suite.models import ModelSpec


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=800_000)
    ap.add_argument("--queries", type=int, default=485)
    ap.add_argument("--batch-items", type=int, default=32_768)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--harness", type=Path, default=None, help="a harness.py to load in place of suite.harness")
    args = ap.parse_args()
    sys.setswitchinterval(harness.GIL_SWITCH_INTERVAL_S)  # as a run sets it
    module = harness
    if args.harness is not None:
        spec = importlib.util.spec_from_file_location("suite.harness", args.harness)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["suite.harness"] = module
        spec.loader.exec_module(module)
    offsets = QuerySizes.parse("mlperf").offsets(args.queries * 270, seed=0)
    n_items = int(offsets[-1])
    items = Batch(np.zeros((n_items, 1), np.float32), (np.zeros((n_items, 1), np.int32),))
    library = QueryLibrary(Dataset(path=Path("/nonexistent"), meta={}, items=items, labels=np.zeros((n_items, 1), np.int8)), offsets)
    backend = NullBackend(BackendConfig(model=ModelSpec(name="dlrm-v2", scale="tiny")))
    rng = np.random.default_rng(1)
    for _ in range(args.repeats):
        batcher = module.Batcher(library, backend, max_batch_items=args.batch_items)
        indices = rng.integers(0, len(library), args.samples).tolist()
        ids = list(range(1 << 40, (1 << 40) + args.samples))
        first: list[float] = []

        done = threading.Event()
        waited: list[float] = [0.0]

        def watch(batcher: harness.Batcher = batcher, first: list[float] = first) -> None:
            while batcher._queue.empty():
                time.sleep(0.0001)
            first.append(time.perf_counter())

        def tick(waited: list[float] = waited, done: threading.Event = done) -> None:
            last = time.perf_counter()
            while not done.is_set():
                time.sleep(0.0005)
                now = time.perf_counter()
                waited[0] = max(waited[0], now - last)
                last = now

        watcher = threading.Thread(target=watch)
        ticker = threading.Thread(target=tick)
        with module.frozen_heap():  # as a run: entered before LoadGen starts (its collection is not timed)
            ticker.start()
            watcher.start()
            t0 = time.perf_counter()
            batcher.issue(ids, indices)
            t1 = time.perf_counter()
            done.set()
            watcher.join()
            ticker.join()
        print(f"{args.samples:,} samples: first chunk queued after {1e3 * (first[0] - t0):7.1f} ms, "
              f"the whole query after {1e3 * (t1 - t0):7.1f} ms, another thread waited up to {1e3 * waited[0]:6.1f} ms",
              flush=True)


if __name__ == "__main__":
    main()
