#!/usr/bin/env bash
# Planned for the next H200 session (not run in session 13): dlrm-v3 at the largest item cap that
# fits one H200 (100 M rows: 1e8 x 512 in bf16 is 102 GB of the 141), with the accuracy gate,
# Offline 12 s and Server at 0.9x of it for 60 s; then fp16 at the 1 M cap (the gate and Offline),
# not yet run on a GPU since the ages-in-hours fix. Copy to .device/ and run with carry .whl, .device.
set -u
start=$SECONDS
export PYTHONUNBUFFERED=1 PY=/tmp/v/bin/python RECSUITE_DATA_DIR=/tmp/data
[ -x /tmp/v/bin/python ] || { python3 -m venv /tmp/v && echo $(python3 -c 'import site;print(site.getsitepackages()[0])') > $(/tmp/v/bin/python -c 'import sysconfig;print(sysconfig.get_paths()["purelib"])')/base.pth && /tmp/v/bin/pip install -q --no-index --no-deps .whl/*.whl; }
/tmp/v/bin/pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null 2>&1
echo "== dlrm-v3, 100 M items, bf16: accuracy, Offline, Server 0.9x 60 s ($((SECONDS - start)) s)"
mkdir -p $OUT/cap100m $OUT/fp16
SCALE=100000000 ROWS=256 SKIP_PLAIN=1 SKIP_TESTS=1 SECONDS_RUN=12 SERVER_SECONDS=60 OUT=$OUT/cap100m \
  timeout 380 bash benchmarks/dlrm_v3_h200.sh 2>&1 | grep -v -i warn | grep '^\[\|^{\|rror' | cut -c1-400
nvidia-smi --query-gpu=memory.used,memory.total --format=csv,noheader
echo "== dlrm-v3, 1 M items, fp16: accuracy, Offline ($((SECONDS - start)) s)"
rm -rf /tmp/v3res
PRECISION=fp16 ROWS=256 SKIP_PLAIN=1 SKIP_TESTS=1 SECONDS_RUN=12 SERVER_SECONDS=10 OUT=$OUT/fp16 \
  timeout $((585 - (SECONDS - start))) bash benchmarks/dlrm_v3_h200.sh 2>&1 | grep -v -i warn | grep '^\[\|^{\|rror' | cut -c1-400
echo "total $((SECONDS - start)) s"
