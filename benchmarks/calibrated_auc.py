"""How close a faithful backend scores to the calibrated AUC (dlrm-v2: MLPerf's 80.31%).

Generates (or reuses) the dataset, then scores every item with torch-cpu at each precision and
prints the AUC as accuracy.txt would. Run by hand:
``.venv/bin/python benchmarks/calibrated_auc.py --rows 32768 --data-dir /tmp/fid/data``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from suite.backends import BackendConfig, get_backend
from suite.datasets import synthetic
from suite.datasets.batch import Batch
from suite.datasets.store import Dataset
from suite.metrics import auc
from suite.models import ModelSpec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="dlrm-v2")
    parser.add_argument("--scale", default="tiny")
    parser.add_argument("--rows", type=int, default=32768)
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args()
    spec = ModelSpec(name=args.model, scale=args.scale)
    started = time.perf_counter()
    path = synthetic.ensure(spec, args.rows, args.data_dir)
    print(f"data {path} ({time.perf_counter() - started:.1f} s)")
    data = Dataset.load(path)
    labels = np.asarray(data.labels)[:, 0]
    print(f"teacher (fp64) AUC {100 * data.reference_auc[0]:.4f}%, target {100 * synthetic.target_auc(args.model):.2f}%")
    for precision in args.precisions.split(","):
        backend = get_backend("torch-cpu")(BackendConfig(model=spec, threads=1, precision=precision))
        backend.load()
        started = time.perf_counter()
        scores = np.concatenate([
            backend.predict(Batch(dense=data.items.dense[lo:lo + 2048], sparse=tuple(s[lo:lo + 2048] for s in data.items.sparse)))
            for lo in range(0, args.rows, 2048)
        ])
        seconds = time.perf_counter() - started
        backend.close()
        value = 100 * auc(labels, scores)
        print(f"{precision}: AUC {value:.4f}% (accuracy.txt: {value:.3f}%), {args.rows / seconds:.0f} items/s")


if __name__ == "__main__":
    main()
