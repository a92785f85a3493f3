set -o pipefail; python3 -m venv /tmp/v && P=$(python3 -c 'import site;print(site.getsitepackages()[0])') && echo "$P" > $(/tmp/v/bin/python -c 'import sysconfig;print(sysconfig.get_paths()["purelib"])')/base.pth && /tmp/v/bin/pip install -q --no-index --no-deps .whl/*.whl && /tmp/v/bin/pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null || exit 1
export PYTHONUNBUFFERED=1 PY=/tmp/v/bin/python S=/tmp/v/bin/suite RECSUITE_DATA_DIR=/tmp/data
(timeout 140 $PY -m pytest -q -m cuda -p no:cacheprovider 2>&1 | tee $OUT/cuda_tests.txt | tail -3)
A="--model dlrm-v2 --backend torch-cuda --scale 4000000 --precision fp8 --rows 262144 --no-progress --output /tmp/r"
(time timeout 200 $S run $A --scenario offline --system h200) 2>&1 | tail -4
Q=$($PY -c "import json;print(round(0.9*json.load(open('/tmp/r/h200/dlrm-v2/Offline/performance/run_1/result.json'))['performance']['metric']['value']/1))" 2>/dev/null)
echo "0.9 x Offline = $Q"
timeout 100 $S run $A --scenario server --system h200 2>&1 | tail -2
[ -n "$Q" ] && timeout 100 $S run $A --scenario server --system h200-09 --target-qps $Q 2>&1 | tail -2
$S summary /tmp/r | tee $OUT/summary.txt
$S check /tmp/r > $OUT/check.txt 2>&1; tail -4 $OUT/check.txt
for s in h200/dlrm-v2/Offline h200/dlrm-v2/Server h200-09/dlrm-v2/Server; do cp /tmp/r/$s/performance/run_1/result.json $OUT/$(echo $s | tr / _).json 2>/dev/null; done
