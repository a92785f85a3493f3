#!/usr/bin/env bash
# Planned for the next H200 session (not run in sessions 14 and 15): the DeepRecSys models' Server runs
# have lasted 2-60 s. NCF as typed (4 lanes, copy staging, 2 Server batches in flight) at 0.5x of
# its Offline for 300 s, then WnD as typed at 0.5x for 120 s: do they hold as long as DLRM-v2's?
# Copy to .device/ and run with carry .whl, .device.
set -u
start=$SECONDS
export PYTHONUNBUFFERED=1 PY=/tmp/v/bin/python RECSUITE_DATA_DIR=/tmp/data
[ -x /tmp/v/bin/python ] || { python3 -m venv /tmp/v && echo $(python3 -c 'import site;print(site.getsitepackages()[0])') > $(/tmp/v/bin/python -c 'import sysconfig;print(sysconfig.get_paths()["purelib"])')/base.pth && /tmp/v/bin/pip install -q --no-index --no-deps .whl/*.whl; }
/tmp/v/bin/pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null 2>&1
echo "== NCF as typed, 0.5x for 300 s ($((SECONDS - start)) s)"
(cd benchmarks && timeout 360 $PY gpu_server.py --models ncf --scale full --rows 65536 --precisions bf16 --fractions 0.5 \
  --seconds 300 --offline-seconds 3 --no-auto --out $OUT/ncf_300s.jsonl 2>&1 | grep -v -i warn | tail -5)
echo "== WnD as typed, 0.5x for 120 s ($((SECONDS - start)) s)"
(cd benchmarks && timeout $((585 - (SECONDS - start))) $PY gpu_server.py --models wnd --scale full --rows 65536 --precisions bf16 \
  --fractions 0.5 --seconds 120 --offline-seconds 3 --no-auto --out $OUT/wnd_120s.jsonl 2>&1 | grep -v -i warn | tail -5)
echo "total $((SECONDS - start)) s"
