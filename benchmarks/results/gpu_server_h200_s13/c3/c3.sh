#!/usr/bin/env bash
# Session 13, call 3: the tensor-descriptor attention after the 32-bit offset fix (cuda tests, the
# tile sweep, and dlrm-v3 Offline with tune=1 where a descriptor shape is fastest); NCF with its new
# default of 2 lanes, as typed, Server at 0.5x and 0.6x of Offline for 10 s.
set -u
start=$SECONDS
export PYTHONUNBUFFERED=1 PY=/tmp/v/bin/python RECSUITE_DATA_DIR=/tmp/data
[ -x /tmp/v/bin/python ] || { python3 -m venv /tmp/v && echo $(python3 -c 'import site;print(site.getsitepackages()[0])') > $(/tmp/v/bin/python -c 'import sysconfig;print(sysconfig.get_paths()["purelib"])')/base.pth && /tmp/v/bin/pip install -q --no-index --no-deps .whl/*.whl; }
/tmp/v/bin/pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null 2>&1
echo "== cuda tests ($((SECONDS - start)) s)"
timeout 90 $PY -m pytest -q -p no:cacheprovider -m cuda tests/test_kernels.py -k "hstu" 2>&1 | tail -3 | tee $OUT/cuda_tests.txt
timeout 90 $PY -m pytest -q -p no:cacheprovider -m cuda tests/test_torch_cuda.py -k "ncf_defaults or graphs_are_captured" 2>&1 | tail -3 | tee -a $OUT/cuda_tests.txt
echo "== tile sweep ($((SECONDS - start)) s)"
timeout 120 $PY benchmarks/hstu_gpu.py --scale 1000000 --tiles --batch 5 --seconds 1.5 2>&1 | grep -v -i warn > $OUT/tiles.jsonl
grep -v '"rejected"' $OUT/tiles.jsonl | grep -E '"tile"|fastest' | cut -c1-150 | tail -26; grep -c rejected $OUT/tiles.jsonl
echo "== ncf as typed (2 lanes), Server 0.5x 0.6x ($((SECONDS - start)) s)"
(cd benchmarks && timeout 150 $PY gpu_server.py --models ncf --scale full --rows 65536 --precisions bf16 --fractions 0.5,0.6 \
  --seconds 10 --offline-seconds 3 --no-auto --out $OUT/ncf_typed.jsonl 2>&1 | grep -v -i warn | tail -12)
if grep '"fastest"' $OUT/tiles.jsonl | grep -q ' tma'; then
  echo "== a tma shape is fastest: dlrm-v3 Offline default then tune=1 ($((SECONDS - start)) s)"
  left=$((570 - (SECONDS - start)))
  ROWS=256 SKIP_PLAIN=1 SKIP_TESTS=1 SKIP_ACCURACY=1 SECONDS_RUN=12 SERVER_SECONDS=15 OFFLINE_ALT="--option tune=1" \
    timeout $left bash benchmarks/dlrm_v3_h200.sh 2>&1 | grep -v -i warn | tail -12
fi
echo "total $((SECONDS - start)) s"
