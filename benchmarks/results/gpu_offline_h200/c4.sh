#!/usr/bin/env bash
# Session 5, call 4: dlrm-v2 fp8 Server at 0.9x Offline for 120 s with the finer top buckets and the
# frozen heap; NCF in Server at 0.5x with in-flight limits and a shared compute stream; RMC2 in Server.
set -u
start=$SECONDS
export PYTHONUNBUFFERED=1 PY=/tmp/v/bin/python RECSUITE_DATA_DIR=/tmp/data
python3 -m venv /tmp/v && echo $(python3 -c 'import site;print(site.getsitepackages()[0])') > $(/tmp/v/bin/python -c 'import sysconfig;print(sysconfig.get_paths()["purelib"])')/base.pth && /tmp/v/bin/pip install -q --no-index --no-deps .whl/*.whl && /tmp/v/bin/pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null 2>&1
git log --oneline -1 | cut -c1-80
cd benchmarks
g() { timeout "$1" $PY gpu_server.py "${@:2}" 2>&1 | grep -v -i warn | grep -v "^  warnings" | tail -12; }
g 200 --models dlrm-v2 --scale full --precisions fp8 --fractions 0.9 --seconds 120 --offline-seconds 8 --no-auto --out $OUT/dlrm.jsonl
echo "== ncf ($((SECONDS - start)) s)"
g 75 --models ncf --scale full --rows 65536 --precisions bf16 --variants "in_flight=0;in_flight=2;compute=shared" --fractions 0.5 --seconds 3 --offline-seconds 2 --no-auto --out $OUT/ncf.jsonl
echo "== rmc2 ($((SECONDS - start)) s)"
g 45 --models dlrm-rmc2 --scale full --rows 65536 --precisions bf16 --fractions 0.5 --seconds 3 --offline-seconds 2 --no-auto --out $OUT/rmc2.jsonl
echo "total $((SECONDS - start)) s"
