#!/usr/bin/env bash
# Planned for the next H200 session (not run in session 12): where NCF's 6-11 ms of worker host
# time a Server batch goes (torch-cuda's new predict_us_per_batch: lane, stage, launch, gpu), and
# whether lanes that spin (NCF's Offline was 309k q/s with them against 233k since lanes sleep) or
# fewer lanes lift its Server capacity to 0.5x of its Offline; the cuda tests of the split, of the
# attention's tensor-descriptor shapes and of tune's output check; the tile sweep with those shapes.
set -u
start=$SECONDS
export PYTHONUNBUFFERED=1 PY=/tmp/v/bin/python RECSUITE_DATA_DIR=/tmp/data
python3 -m venv /tmp/v && echo $(python3 -c 'import site;print(site.getsitepackages()[0])') > $(/tmp/v/bin/python -c 'import sysconfig;print(sysconfig.get_paths()["purelib"])')/base.pth && /tmp/v/bin/pip install -q --no-index --no-deps .whl/*.whl && /tmp/v/bin/pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null 2>&1
echo "== cuda tests: the split, the tensor-descriptor shapes, tune's check ($((SECONDS - start)) s)"
timeout 60 $PY -m pytest -q -p no:cacheprovider -m cuda tests/test_torch_cuda.py -k "graphs_are_captured" 2>&1 | tail -2
timeout 90 $PY -m pytest -q -p no:cacheprovider -m cuda tests/test_kernels.py -k "hstu" 2>&1 | tail -2
echo "== tile sweep with the tma shapes ($((SECONDS - start)) s)"
timeout 120 $PY benchmarks/hstu_gpu.py --scale 1000000 --tiles --batch 5 --seconds 1.5 2>&1 | grep -v -i warn | tee $OUT/tiles.jsonl | tail -28
echo "== ncf Server 0.5x, 10 s: as typed, sync=spin, lanes=4, lanes=2, spin with 4 lanes ($((SECONDS - start)) s)"
(cd benchmarks && timeout 400 $PY gpu_server.py --models ncf --scale full --rows 65536 --precisions bf16 --fractions 0.5 \
  --seconds 10 --offline-seconds 3 --no-auto --variants ";sync=spin;lanes=4;lanes=2;sync=spin,lanes=4" \
  --out $OUT/ncf_split.jsonl 2>&1 | grep -v -i warn | tail -40)
echo "total $((SECONDS - start)) s"
