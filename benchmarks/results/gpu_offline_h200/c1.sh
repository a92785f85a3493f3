#!/usr/bin/env bash
# Session 5, call 1: kernel tests on the GPU (667ec5a's epilogue refactor), then the CLI as typed
# at full scale, Offline fp8, against settings that remove host staging (start_from_device, lanes).
set -u
start=$SECONDS
END=${END:-560}
export PYTHONUNBUFFERED=1 PY=/tmp/v/bin/python S=/tmp/v/bin/suite RECSUITE_DATA_DIR=/tmp/data
left() { echo $(( END - (SECONDS - start) )); }
python3 -m venv /tmp/v && echo $(python3 -c 'import site;print(site.getsitepackages()[0])') > $(/tmp/v/bin/python -c 'import sysconfig;print(sysconfig.get_paths()["purelib"])')/base.pth && /tmp/v/bin/pip install -q --no-index --no-deps .whl/*.whl && /tmp/v/bin/pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null 2>&1
git log --oneline -1 2>/dev/null; nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader
(time timeout 200 $PY -m pytest -q -x -p no:cacheprovider tests/test_kernels.py 2>&1 | tail -4) 2>&1 | tee $OUT/gpu_tests.txt
printf 'dlrm-v2.Offline.min_duration = 10000\n' > /tmp/u.conf
A="--model dlrm-v2 --backend torch-cuda --scale full --rows 131072 --no-progress --output /tmp/r --user-conf /tmp/u.conf --scenario offline --precision fp8"
run() {
  local name=$1; shift
  local l=$(left); echo "== $name $* ($l s left)"
  [ $l -lt 60 ] && { echo "skipped: no time"; return; }
  (time timeout $l $S run $A --system $name "$@") 2>&1 | grep -v -i warn | tail -3
  f=/tmp/r/$name/dlrm-v2/Offline/performance/run_1/result.json
  $PY - $f <<'P'
import json,sys
d=json.load(open(sys.argv[1])); h=d["harness"]; b=d["backend"]; w=d["warmup"]
print("  samples/s", d["performance"]["metric"]["value"], "items/s %.3g" % h["items_per_second"], "probe %.3g peak %.3g" % (w["probe_items_per_s"], w["probe_peak_items_per_s"]),
      "predict_s", round(h["predict_s"],1), "dur", round(h["duration_s"],2), "gather_s", round(h["gather_s"],2), "batches", h["batches"], "host_us", b.get("host_us_per_batch"))
P
  cp $f $OUT/$name.json 2>/dev/null
}
run fp8
run fp8-sfd --option start_from_device=1
run fp8-l16 --option lanes=16 --workers 16
run fp8-map --option staging=mapped
echo "total $((SECONDS - start)) s"
