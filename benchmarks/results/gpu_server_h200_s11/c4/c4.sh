#!/usr/bin/env bash
# Session 11, call 3: dlrm-v3 with jagged graphs through LoadGen: Offline, then Server at 0.9x of it
# for 60 s with the defaults (batches capped where the rate holds: 8) and with --max-batch-items 6.
set -u
start=$SECONDS
export PYTHONUNBUFFERED=1 PY=/tmp/v/bin/python RECSUITE_DATA_DIR=/tmp/data
python3 -m venv /tmp/v && echo $(python3 -c 'import site;print(site.getsitepackages()[0])') > $(/tmp/v/bin/python -c 'import sysconfig;print(sysconfig.get_paths()["purelib"])')/base.pth && /tmp/v/bin/pip install -q --no-index --no-deps .whl/*.whl && /tmp/v/bin/pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null 2>&1
mkdir -p $OUT/v3
timeout $((440 - (SECONDS - start))) env OUT=$OUT/v3 ROWS=256 SKIP_PLAIN=1 SKIP_TESTS=1 SKIP_ACCURACY=1 SECONDS_RUN=12 SERVER_SECONDS=60 \
  SERVER_ALT="--max-batch-items 6" bash benchmarks/dlrm_v3_h200.sh 2>&1 | grep -v -i warn | grep -v "^-\|^total\|^d" | tail -30
echo "total $((SECONDS - start)) s"
