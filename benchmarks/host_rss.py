"""Peak host memory (ru_maxrss) of labelling a DLRM-v2 dataset or loading it on torch-cpu, in a fresh process.

    python3 benchmarks/host_rss.py label|load:fp32|load:bf16 SCALE ROWS
"""

import json
import resource
import sys
import tempfile
import time
from pathlib import Path

from suite.models import ModelSpec

what, scale, rows = sys.argv[1], sys.argv[2], int(sys.argv[3])
spec = ModelSpec(name="dlrm-v2", scale=scale)
t0 = time.perf_counter()
if what == "label":
    from suite.datasets import synthetic
    synthetic.ensure(spec, rows, Path(tempfile.mkdtemp(prefix="rss-")))
else:
    from suite.backends.base import BackendConfig
    from suite.backends.torch_cpu import TorchCPUBackend
    b = TorchCPUBackend(BackendConfig(model=spec, precision=what.split(":")[1], threads=2)); b.load()
print(json.dumps({"what": what, "scale": scale, "rows": rows, "seconds": round(time.perf_counter() - t0, 1), "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)}))
