#!/usr/bin/env bash
# Session 14, call 4: dlrm-v3 at the 100 M item cap (the largest that fits one H200), bf16:
# Offline 12 s, then Server at 0.9x of it for 120 s (call 1's 60-s run was cut by its time limit).
set -u
start=$SECONDS
export PYTHONUNBUFFERED=1 PY=/tmp/v/bin/python RECSUITE_DATA_DIR=/tmp/data
[ -x /tmp/v/bin/python ] || { python3 -m venv /tmp/v && echo $(python3 -c 'import site;print(site.getsitepackages()[0])') > $(/tmp/v/bin/python -c 'import sysconfig;print(sysconfig.get_paths()["purelib"])')/base.pth && /tmp/v/bin/pip install -q --no-index --no-deps .whl/*.whl; }
/tmp/v/bin/pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null 2>&1
rm -rf /tmp/v3res
mkdir -p $OUT/cap100m
SCALE=100000000 ROWS=256 SKIP_PLAIN=1 SKIP_TESTS=1 SKIP_ACCURACY=1 SECONDS_RUN=12 SERVER_SECONDS=120 SERVER_TIMEOUT=200 OUT=$OUT/cap100m \
  timeout 560 bash benchmarks/dlrm_v3_h200.sh 2>&1 | grep -v -i warn | grep '^\[\|^{\|rror' | cut -c1-700
echo "total $((SECONDS - start)) s"
