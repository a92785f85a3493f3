#!/usr/bin/env bash
# Session 5, call 2: the fp8 AUC-gate test that failed in call 1 (with its printed AUCs), the rest of
# the kernel tests, torch-cuda's GPU tests (shared compute stream), then dlrm-v2 fp8 at full scale
# through LoadGen in a worker process: compute=shared (new default) vs lanes, Offline then Server 0.9x.
set -u
start=$SECONDS
export PYTHONUNBUFFERED=1 PY=/tmp/v/bin/python RECSUITE_DATA_DIR=/tmp/data
python3 -m venv /tmp/v && echo $(python3 -c 'import site;print(site.getsitepackages()[0])') > $(/tmp/v/bin/python -c 'import sysconfig;print(sysconfig.get_paths()["purelib"])')/base.pth && /tmp/v/bin/pip install -q --no-index --no-deps .whl/*.whl && /tmp/v/bin/pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null 2>&1
(time timeout 150 $PY -m pytest -q -s -p no:cacheprovider tests/test_kernels.py -k "auc_gate" --tb=short 2>&1 | grep -v -i warn | tail -30) 2>&1 | tee $OUT/auc.txt
(time timeout 150 $PY -m pytest -q -p no:cacheprovider tests/test_kernels.py -k "hstu" tests/test_torch_cuda.py 2>&1 | tail -5) 2>&1 | tee $OUT/tests.txt
echo "== gpu_server ($((SECONDS - start)) s so far)"
cd benchmarks && timeout $(( 540 - (SECONDS - start) )) $PY gpu_server.py --models dlrm-v2 --scale full --precisions fp8 --variants "compute=shared;compute=lanes" \
  --fractions 0.9 --seconds 40 --offline-seconds 12 --no-auto --out $OUT/server.jsonl 2>&1 | grep -v -i warn | tail -30
echo "total $((SECONDS - start)) s"
