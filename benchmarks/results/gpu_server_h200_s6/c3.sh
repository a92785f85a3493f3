#!/usr/bin/env bash
# Session 6, call 3: dlrm-v2 fp8 as typed (copy staging), Server at 0.9x Offline for 300 s; then
# dlrm-v2 bf16 through LoadGen: Offline and Server at 0.9x for 30 s.
set -u
start=$SECONDS
export PYTHONUNBUFFERED=1 PY=/tmp/v/bin/python RECSUITE_DATA_DIR=/tmp/data
python3 -m venv /tmp/v && echo $(python3 -c 'import site;print(site.getsitepackages()[0])') > $(/tmp/v/bin/python -c 'import sysconfig;print(sysconfig.get_paths()["purelib"])')/base.pth && /tmp/v/bin/pip install -q --no-index --no-deps .whl/*.whl && /tmp/v/bin/pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null 2>&1
git log --oneline -1 | cut -c1-80
cd benchmarks
g() { timeout "$1" $PY gpu_server.py "${@:2}" 2>&1 | grep -v -i warn | grep -v "^  warnings" | tail -14; }
echo "== dlrm-v2 fp8 copy staging 300 s ($((SECONDS - start)) s)"
g 420 --models dlrm-v2 --scale full --precisions fp8 --fractions 0.9 --seconds 300 --offline-seconds 8 --no-auto --out $OUT/dlrm300_copy.jsonl
echo "== dlrm-v2 bf16 ($((SECONDS - start)) s)"
g $((570 - (SECONDS - start))) --models dlrm-v2 --scale full --precisions bf16 --fractions 0.9 --seconds 30 --offline-seconds 8 --no-auto --out $OUT/dlrm_bf16.jsonl
echo "total $((SECONDS - start)) s"
