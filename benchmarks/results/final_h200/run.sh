#!/usr/bin/env bash
# Lead's final device call on merged main: cuda tests, dlrm-v2 Server through one worker process
# (--devices 1) for 60 s, dlrm-v3 on torch-cuda through LoadGen (plain and fused).
set -u
python3 -m venv /tmp/v && echo $(python3 -c 'import site;print(site.getsitepackages()[0])') > $(/tmp/v/bin/python -c 'import sysconfig;print(sysconfig.get_paths()["purelib"])')/base.pth && /tmp/v/bin/pip install -q --no-index --no-deps .whl/*.whl && /tmp/v/bin/pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null 2>&1
export PYTHONUNBUFFERED=1 RECSUITE_DATA_DIR=/tmp/data S=/tmp/v/bin/suite PY=/tmp/v/bin/python
git log --oneline -1 2>/dev/null | tee $OUT/commit.txt
nvidia-smi -L
echo "== cuda tests"; (time timeout 200 $PY -m pytest -q -m cuda -p no:cacheprovider -x 2>&1 | tail -6) 2>&1 | tee $OUT/cuda_tests.txt
printf 'dlrm-v2.Offline.min_duration = 10000\ndlrm-v2.Server.min_duration = 60000\n' > /tmp/u.conf
A="--model dlrm-v2 --backend torch-cuda --scale 4000000 --precision fp8 --rows 131072 --no-progress --output /tmp/r --user-conf /tmp/u.conf"
echo "== offline --devices 1"; (time timeout 70 $S run $A --scenario offline --devices 1 --system d1) 2>&1 | tail -3
OFF=$($PY -c "import json;print(json.load(open('/tmp/r/d1/dlrm-v2/Offline/performance/run_1/result.json'))['performance']['metric']['value'])")
Q=$($PY -c "print(round(0.85*$OFF))"); echo "offline $OFF -> server $Q"
echo "== server --devices 1 at 0.85x for 60 s"; (time timeout 110 $S run $A --scenario server --devices 1 --target-qps $Q --system d1) 2>&1 | tail -3
echo "== dlrm-v3 torch-cuda bf16 plain and fused (smoke)"
for f in 0 1; do (time timeout 60 $S run --model dlrm-v3 --backend torch-cuda --precision bf16 --option fused=$f --scenario offline --scale 1000000 --profile smoke --no-progress --output /tmp/r --system v3f$f) 2>&1 | tail -3; done
$S summary /tmp/r | tee $OUT/summary.txt
for s in Offline Server; do cp /tmp/r/d1/dlrm-v2/$s/performance/run_1/result.json $OUT/d1_$s.json 2>/dev/null; done
