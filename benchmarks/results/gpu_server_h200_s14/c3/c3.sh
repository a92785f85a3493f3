#!/usr/bin/env bash
# Session 14, call 3: the allocator fix (Triton's allocator per thread) and NCF's new defaults
# (4 lanes, copy staging, Server holding 2 batches) under the cuda tests; NCF as typed in Offline
# and Server at 0.5x and 0.7x (10 s) and 0.5x for 60 s; dlrm-v3 fp16 at the 1 M cap: Offline 12 s
# and Server at 0.9x for 60 s (its Server failed in call 1 with "no allocator was set").
set -u
start=$SECONDS
export PYTHONUNBUFFERED=1 PY=/tmp/v/bin/python RECSUITE_DATA_DIR=/tmp/data
[ -x /tmp/v/bin/python ] || { python3 -m venv /tmp/v && echo $(python3 -c 'import site;print(site.getsitepackages()[0])') > $(/tmp/v/bin/python -c 'import sysconfig;print(sysconfig.get_paths()["purelib"])')/base.pth && /tmp/v/bin/pip install -q --no-index --no-deps .whl/*.whl; }
/tmp/v/bin/pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null 2>&1
echo "== cuda tests ($((SECONDS - start)) s)"
timeout 150 $PY -m pytest -q -p no:cacheprovider tests/test_kernels.py tests/test_torch_cuda.py -k "allocator or any_thread or ncf or option_defaults or hstu_attention" 2>&1 | tail -4
echo "== NCF as typed, 0.5x and 0.7x for 10 s ($((SECONDS - start)) s)"
(cd benchmarks && timeout 100 $PY gpu_server.py --models ncf --scale full --rows 65536 --precisions bf16 --fractions 0.5,0.7 \
  --seconds 10 --offline-seconds 3 --no-auto --out $OUT/ncf_typed.jsonl 2>&1 | grep -v -i warn | tail -8)
echo "== NCF as typed, 0.5x for 60 s ($((SECONDS - start)) s)"
(cd benchmarks && timeout 120 $PY gpu_server.py --models ncf --scale full --rows 65536 --precisions bf16 --fractions 0.5 \
  --seconds 60 --offline-seconds 3 --no-auto --out $OUT/ncf_typed_60s.jsonl 2>&1 | grep -v -i warn | tail -5)
echo "== dlrm-v3, 1 M items, fp16: Offline, Server 0.9x 60 s ($((SECONDS - start)) s)"
mkdir -p $OUT/fp16
PRECISION=fp16 ROWS=256 SKIP_PLAIN=1 SKIP_TESTS=1 SKIP_ACCURACY=1 SECONDS_RUN=12 SERVER_SECONDS=60 SERVER_TIMEOUT=110 OUT=$OUT/fp16 \
  timeout $((590 - (SECONDS - start))) bash benchmarks/dlrm_v3_h200.sh 2>&1 | grep -v -i warn | grep '^\[\|^{\|rror' | cut -c1-600
echo "total $((SECONDS - start)) s"
