#!/usr/bin/env bash
# Session 12, call 2: dlrm-v3 at MLPerf's request size with the attention launched rows-first by
# default (c1's sweep: 1.285 against 1.371 ms): Offline fused, Offline plain (the ratio to the
# plain-PyTorch attention in the same call), then Server at 0.9x of the fused Offline for 300 s.
set -u
start=$SECONDS
export PYTHONUNBUFFERED=1 PY=/tmp/v/bin/python RECSUITE_DATA_DIR=/tmp/data
python3 -m venv /tmp/v && echo $(python3 -c 'import site;print(site.getsitepackages()[0])') > $(/tmp/v/bin/python -c 'import sysconfig;print(sysconfig.get_paths()["purelib"])')/base.pth && /tmp/v/bin/pip install -q --no-index --no-deps .whl/*.whl && /tmp/v/bin/pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null 2>&1
echo "== dlrm-v3: Offline fused and plain 12 s, Server 0.9x 300 s ($((SECONDS - start)) s)"
mkdir -p $OUT/v3
timeout $((595 - (SECONDS - start))) env OUT=$OUT/v3 ROWS=256 SKIP_PLAIN_SERVER=1 SKIP_TESTS=1 SKIP_ACCURACY=1 SECONDS_RUN=12 SERVER_SECONDS=300 \
  FUSED="--option fused=1" bash benchmarks/dlrm_v3_h200.sh 2>&1 | grep -v -i warn | grep -v "^-\|^total\|^d" | tail -20
echo "total $((SECONDS - start)) s"
