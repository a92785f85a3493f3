"""Offline efficiency: LoadGen Offline throughput over the raw backend's, same batch size, same
process, same data.

The raw loop calls ``backend.predict`` on ready-made batches of ``--batch-items`` consecutive items;
the LoadGen run goes through the whole harness (query issue, batching, gathering the queries' rows,
responses). Both are measured in items/s; the raw loop runs after LoadGen at the mean batch size the
harness formed (whole queries up to ``--batch-items``), so both see the same batch size.

    .venv/bin/python benchmarks/offline_efficiency.py [--model dlrm-rmc1] [--scale small] [--seconds 20]
"""

from __future__ import annotations

import argparse

import numpy as np
from common import library_for, loadgen_run, raw_items_per_s, with_settings

from suite.backends import BackendConfig, get_backend
from suite.models import ModelSpec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="dlrm-rmc1")
    ap.add_argument("--scale", default="small")
    ap.add_argument("--backend", default="torch-cpu")
    ap.add_argument("--batch-items", type=int, default=2048)
    ap.add_argument("--seconds", type=float, default=20.0)
    args = ap.parse_args()

    spec = ModelSpec(name=args.model, scale=args.scale)
    library, settings = library_for(spec)
    backend = get_backend(args.backend)(BackendConfig(model=spec))
    backend.load()
    items = library.items
    raw_items_per_s(backend, items, args.batch_items, 3.0)  # warm-up: first calls and page faults
    raw_before = raw_items_per_s(backend, items, args.batch_items, args.seconds / 2)
    mean_q = float(library.sizes.mean())
    settings = with_settings(
        settings,
        min_duration_ms=int(args.seconds * 1000),
        min_query_count=1,
        performance_sample_count=0,
        # Generous: an Offline query that runs out before min_duration makes the run INVALID.
        target_qps=1.3 * raw_before / mean_q,
        max_batch_items=args.batch_items,
    )
    outcome, detail = loadgen_run(library, backend, settings)
    qps = float(detail.get("result_samples_per_second"))
    loadgen_items = qps * outcome.completed_items / outcome.completed_queries
    mean_batch = round(outcome.completed_items / outcome.batches)
    raw_same = raw_items_per_s(backend, items, mean_batch, args.seconds / 2)
    print(f"model={args.model} scale={args.scale} backend={args.backend} max_batch_items={args.batch_items} "
          f"threads={backend.info().threads}")
    print(f"raw backend      : {raw_same:12,.0f} items/s at {mean_batch}-item batches "
          f"({raw_before:,.0f} at {args.batch_items} before the LoadGen run)")
    print(f"LoadGen Offline  : {loadgen_items:12,.0f} items/s  ({qps:,.1f} queries/s x {outcome.completed_items / outcome.completed_queries:.1f} items, "
          f"{outcome.batches} batches of {outcome.completed_items / outcome.batches:.0f} items, {detail.get('result_validity')})")
    print(f"harness split    : predict {outcome.predict_s:.1f} s, gather {outcome.gather_s:.2f} s of {outcome.duration_s:.1f} s "
          f"(predict alone: {outcome.completed_items / outcome.predict_s:,.0f} items/s)")
    print(f"efficiency       : {loadgen_items / raw_same:.3f}")
    backend.close()


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
