#!/usr/bin/env bash
# Session 9, call 3: dlrm-v2 fp8 as typed (dma staging now issues a batch's copies in one
# cudaMemcpyBatchAsync), Server at 0.9x of Offline for 300 s, GIL watched; then, in the time left,
# dlrm-v3 at MLPerf's request size, Offline 8 s (generating its data first) and Server at 0.85x.
set -u
start=$SECONDS
export PYTHONUNBUFFERED=1 PY=/tmp/v/bin/python RECSUITE_DATA_DIR=/tmp/data
python3 -m venv /tmp/v && echo $(python3 -c 'import site;print(site.getsitepackages()[0])') > $(/tmp/v/bin/python -c 'import sysconfig;print(sysconfig.get_paths()["purelib"])')/base.pth && /tmp/v/bin/pip install -q --no-index --no-deps .whl/*.whl && /tmp/v/bin/pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null 2>&1
left() { echo $((590 - (SECONDS - start))); }
echo "== dlrm-v2 fp8 as typed (dma=batch), Server 0.9x 300 s ($((SECONDS - start)) s)"
(cd benchmarks && timeout 450 $PY gpu_server.py --models dlrm-v2 --scale full --precisions fp8 --fractions 0.9 --seconds 300 \
  --offline-seconds 8 --no-auto --out $OUT/c3_dlrm300.jsonl --gil-watch $OUT/gil_watch.txt 2>&1 | grep -v -i warn | grep -v "^  warnings" | tail -8)
echo "== dlrm-v3 MLPerf size, Server 0.85x ($((SECONDS - start)) s)"
mkdir -p $OUT/v3
t=$(left); [ "$t" -gt 100 ] && timeout $t env OUT=$OUT/v3 ROWS=256 SKIP_PLAIN=1 SKIP_TESTS=1 SKIP_ACCURACY=1 SECONDS_RUN=8 SERVER_SECONDS=20 \
  SERVER_FRACTION=0.85 bash benchmarks/dlrm_v3_h200.sh 2>&1 | grep -v -i warn | grep -v "^-\|^total\|^d" | tail -8
echo "total $((SECONDS - start)) s"
