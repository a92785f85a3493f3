#!/usr/bin/env bash
# Session 6, call 2: NCF in Server with start_from_device; dlrm-v2 fp8 Server 0.9x 300 s again (start_from_device),
# now recording LoadGen percentiles and issue stalls.
set -u
start=$SECONDS
export PYTHONUNBUFFERED=1 PY=/tmp/v/bin/python RECSUITE_DATA_DIR=/tmp/data
python3 -m venv /tmp/v && echo $(python3 -c 'import site;print(site.getsitepackages()[0])') > $(/tmp/v/bin/python -c 'import sysconfig;print(sysconfig.get_paths()["purelib"])')/base.pth && /tmp/v/bin/pip install -q --no-index --no-deps .whl/*.whl && /tmp/v/bin/pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null 2>&1
git log --oneline -1 | cut -c1-80; git status --short | head -5
cd benchmarks
g() { timeout "$1" $PY gpu_server.py "${@:2}" 2>&1 | grep -v -i warn | grep -v "^  warnings" | tail -14; }
echo "== ncf ($((SECONDS - start)) s)"
g 100 --models ncf --scale full --rows 65536 --precisions bf16 --variants "start_from_device=1;start_from_device=1,compute=shared" --fractions 0.5,0.7 --seconds 3 --offline-seconds 2 --no-auto --out $OUT/ncf.jsonl
echo "== dlrm-v2 300 s ($((SECONDS - start)) s)"
g 440 --models dlrm-v2 --scale full --precisions fp8 --variants "start_from_device=1" --fractions 0.9 --seconds 300 --offline-seconds 8 --no-auto --out $OUT/dlrm300.jsonl
echo "total $((SECONDS - start)) s"
