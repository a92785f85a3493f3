"""The CPU backends' memory policy: glibc keeps large blocks for reuse instead of page-faulting every
batch's activations in again."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

from suite.backends import BackendConfig, get_backend
from suite.models import ModelSpec

# Two 28 MiB blocks (a 2,048-item batch of dlrm-v2's 3,456-wide fp32 activations), alive together,
# written, freed, five times over: the minor page faults of the last four rounds.
FAULTS = """
import json, resource, sys
import numpy as np
if sys.argv[1] == "policy":
    from suite.backends.base import default_malloc_policy
    default_malloc_policy()
def round_():
    a, b = np.empty(7 * 2**20, np.float32), np.empty(7 * 2**20, np.float32)
    a.fill(1.0); b.fill(2.0)
round_()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(4):
    round_()
print(json.dumps(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before))
"""

glibc = pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc", reason="glibc's malloc")


def faults(mode: str) -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    out = subprocess.run([sys.executable, "-c", FAULTS, mode], env=env, capture_output=True, text=True, check=True, timeout=60)
    return int(json.loads(out.stdout))


@glibc
def test_large_blocks_are_reused_without_page_faults() -> None:
    # glibc's default hands the memory back and faults it in again (thousands of faults here, one per
    # 4 KiB page; about a hundred where transparent huge pages back it); kept, it faults in once.
    assert faults("policy") < 50 <= faults("default")


@glibc
def test_torch_cpu_records_its_malloc_policy() -> None:
    backend = get_backend("torch-cpu")(BackendConfig(model=ModelSpec(name="ncf", scale="tiny"), threads=1))
    backend.load()
    try:
        assert backend.info().to_dict()["malloc"] == "glibc mmap_threshold=33554432 trim_threshold=1073741824"
    finally:
        backend.close()
