#!/usr/bin/env bash
# Session 13, call 5: NCF as typed (2 lanes) in Server at 0.5x of Offline for 60 s; dlrm-v3 with the
# tensor-descriptor attention as the default, Offline 12 s then Server at 0.9x of it for 240 s.
set -u
start=$SECONDS
export PYTHONUNBUFFERED=1 PY=/tmp/v/bin/python RECSUITE_DATA_DIR=/tmp/data
[ -x /tmp/v/bin/python ] || { python3 -m venv /tmp/v && echo $(python3 -c 'import site;print(site.getsitepackages()[0])') > $(/tmp/v/bin/python -c 'import sysconfig;print(sysconfig.get_paths()["purelib"])')/base.pth && /tmp/v/bin/pip install -q --no-index --no-deps .whl/*.whl; }
/tmp/v/bin/pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null 2>&1
echo "== ncf as typed, Server 0.5x for 60 s ($((SECONDS - start)) s)"
(cd benchmarks && timeout 110 $PY gpu_server.py --models ncf --scale full --rows 65536 --precisions bf16 --fractions 0.5 \
  --seconds 60 --offline-seconds 3 --no-auto --out $OUT/ncf_60s.jsonl 2>&1 | grep -v -i warn | tail -6)
echo "== dlrm-v3 Offline, Server 0.9x 240 s ($((SECONDS - start)) s)"
mkdir -p $OUT/v3
ROWS=256 SKIP_PLAIN=1 SKIP_TESTS=1 SKIP_ACCURACY=1 SECONDS_RUN=12 SERVER_SECONDS=240 OUT=$OUT/v3 \
  timeout $((455 - (SECONDS - start))) bash benchmarks/dlrm_v3_h200.sh 2>&1 | grep -v -i warn | grep '^\[\|^{' | cut -c1-300
echo "total $((SECONDS - start)) s"
