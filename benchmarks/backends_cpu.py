"""torch-cpu against onnxruntime on this CPU: LoadGen Offline throughput per model, one run.

Both backends run in the same process on the same generated data with the same harness settings,
alternating per model, so the ratio ORT/torch of each row is from one run. ``--lowerings`` also
times onnxruntime's other lowering of pooled lookups (bag-major, against the default item-major).

    .venv/bin/python benchmarks/backends_cpu.py [--models all] [--scale small] [--seconds 5]
"""

from __future__ import annotations

import argparse

from common import library_for, loadgen_run, with_settings

from suite.backends import BackendConfig, get_backend
from suite.models import MODELS, ModelSpec


def offline(library, settings, name: str, spec: ModelSpec, options: tuple = ()) -> tuple[float, float]:
    backend = get_backend(name)(BackendConfig(model=spec, options=options))
    backend.load()
    outcome, detail = loadgen_run(library, backend, settings)
    backend.close()
    qps = float(detail.get("result_samples_per_second") or 0)
    return qps, qps * outcome.completed_items / max(outcome.completed_queries, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="all")
    ap.add_argument("--scale", default="small")
    ap.add_argument("--rows", type=int, default=16384)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--lowerings", action="store_true")
    args = ap.parse_args()
    models = sorted(MODELS) if args.models == "all" else args.models.split(",")
    print(f"{'model':<10} {'torch-cpu items/s':>18} {'onnxruntime items/s':>20} {'ORT/torch':>9}" + ("  bag-major/item-major" if args.lowerings else ""))
    for model in models:
        spec = ModelSpec(name=model, scale=args.scale)
        library, settings = library_for(spec, rows=args.rows)
        probe = with_settings(settings, min_duration_ms=500, min_query_count=1, performance_sample_count=0, target_qps=1e9)
        # A first pass with a huge query measures speed; the timed runs then ask for the right size.
        qps_torch, _ = offline(library, with_settings(probe, target_qps=50), "torch-cpu", spec)
        timed = with_settings(probe, min_duration_ms=int(args.seconds * 1000), target_qps=max(qps_torch, 1.0))
        _, torch_items = offline(library, timed, "torch-cpu", spec)
        _, ort_items = offline(library, timed, "onnxruntime", spec)
        line = f"{model:<10} {torch_items:>18,.0f} {ort_items:>20,.0f} {ort_items / torch_items:>9.2f}"
        if args.lowerings:
            _, bag_major = offline(library, timed, "onnxruntime", spec, (("lowering", "bag-major"),))
            line += f"  {bag_major / ort_items:>20.2f}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
