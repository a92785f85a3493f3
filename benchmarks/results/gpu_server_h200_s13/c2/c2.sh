#!/usr/bin/env bash
set -u
start=$SECONDS
export PYTHONUNBUFFERED=1 PY=/tmp/v/bin/python RECSUITE_DATA_DIR=/tmp/data
[ -x /tmp/v/bin/python ] || { python3 -m venv /tmp/v && echo $(python3 -c 'import site;print(site.getsitepackages()[0])') > $(/tmp/v/bin/python -c 'import sysconfig;print(sysconfig.get_paths()["purelib"])')/base.pth && /tmp/v/bin/pip install -q --no-index --no-deps .whl/*.whl; }
/tmp/v/bin/pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null 2>&1
echo "== tma failure in full"
timeout 90 $PY -m pytest -q -p no:cacheprovider -m cuda tests/test_kernels.py -k "hstu_tune_times_only" 2>&1 | grep -v -i warn | tail -60
echo "== ncf lanes 1,2,3 at 0.5 0.7 0.9 ($((SECONDS - start)) s)"
(cd benchmarks && timeout 330 $PY gpu_server.py --models ncf --scale full --rows 65536 --precisions bf16 --fractions 0.5,0.7,0.9 \
  --seconds 10 --offline-seconds 3 --no-auto --variants "lanes=1;lanes=2;lanes=3" \
  --out $OUT/ncf_lanes.jsonl 2>&1 | grep -v -i warn | tail -40)
echo "total $((SECONDS - start)) s"
