"""What (prediction, label) pairs cost the harness per batch (``Batcher._pairs``).

Accuracy runs and audits answer every sample with float32 (prediction, label) pairs, as MLPerf's
reference does; this times building them from a batch's scores, for the batch shapes the harness
makes: one query (Server, SingleStream), and Offline's batches of whole queries up to 2048 items.
Run by hand: ``.venv/bin/python benchmarks/accuracy_pairs.py``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from common import library_for

from suite.harness import Batcher
from suite.models import ModelSpec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="dlrm-rmc1")
    parser.add_argument("--repeats", type=int, default=20000)
    args = parser.parse_args()
    library, _ = library_for(ModelSpec(name=args.model, scale="tiny"), query_size="mlperf")
    labels = np.asarray(library.dataset.labels).reshape(len(library.dataset), -1).astype(np.float32)
    batcher = Batcher(library, backend=None, max_batch_items=2048, labels=labels)
    rng = np.random.default_rng(0)
    cases = {"1 query": [int(rng.integers(len(library)))]}
    start = int(rng.integers(len(library) - 16))
    cases["consecutive queries, <=2048 items"] = list(range(start, start + 7))
    cases["scattered queries, <=2048 items"] = [int(i) for i in rng.choice(len(library), 7, replace=False)]
    for name, idx in cases.items():
        n = int(library.sizes[idx].sum())
        scores = rng.random(n, dtype=np.float32)
        batcher._pairs(scores, idx, labels)
        t0 = time.perf_counter()
        for _ in range(args.repeats):
            batcher._pairs(scores, idx, labels)
        per = (time.perf_counter() - t0) / args.repeats
        print(f"{name:36s} {len(idx)} queries, {n:5d} items: {per * 1e6:6.2f} us per batch ({per * 1e9 / n:.1f} ns per item)")


if __name__ == "__main__":
    main()
