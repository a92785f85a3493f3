#!/usr/bin/env bash
# Session 16, call 2: DLRM-v2 fp8's kernels. The cuda tests of the new pieces; gpu.py's layer table
# (every up-projection tile candidate, new ones with the epilogue in halves or x0/x_l read before
# the K loop) and kernel profile, the forward with the bottom MLP on a side stream (overlap=1), and
# with tune=1's picks, each sustained 6 s; then the CLI's Offline (15 s) as typed, with
# overlap=1 tune=1, and with those and graph_max=65536, one load each.
set -u
start=$SECONDS
export PYTHONUNBUFFERED=1 PY=/tmp/v/bin/python RECSUITE_DATA_DIR=/tmp/data
[ -x /tmp/v/bin/python ] || { python3 -m venv /tmp/v && echo $(python3 -c 'import site;print(site.getsitepackages()[0])') > $(/tmp/v/bin/python -c 'import sysconfig;print(sysconfig.get_paths()["purelib"])')/base.pth && /tmp/v/bin/pip install -q --no-index --no-deps .whl/*.whl; }
/tmp/v/bin/pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null 2>&1
R=clocks_event_reasons.active
nvidia-smi --query-gpu=$R --format=csv >/dev/null 2>&1 || R=clocks_throttle_reasons.active
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw,temperature.gpu,utilization.gpu,$R --format=csv,noheader -lms 500 > $OUT/smi.csv 2>&1 &
SMI=$!
mark() { echo "$(date +%H:%M:%S) [$((SECONDS - start)) s] $*" | tee -a $OUT/marks.txt; }
mark "cuda tests"
timeout 100 $PY -m pytest -q -p no:cacheprovider -m cuda tests/test_kernels.py tests/test_torch_cuda.py -k "persistent or side_stream or graph_max" 2>&1 | tail -3 | tee $OUT/cuda_tests.txt
mark "gpu.py layers, profile, sustain"
(cd benchmarks && timeout 230 $PY gpu.py --sections dlrm-v2 --dlrm-items 65536 --dlrm-batch 16384 --layers --profile --sustain 6 \
  --dlrm-variants 'dense=fp8;dense=fp8,overlap=1;dense=fp8,overlap=1,tune=1' --out $OUT > $OUT/gpu.txt 2>&1)
grep -v -i warn $OUT/gpu.txt | grep -v "^    _linear\|^  kernels of" | tail -40
grep -A1 "kernels of" $OUT/gpu.txt | cut -c1-400
printf 'dlrm-v2.Offline.min_duration = 15000\n' > /tmp/u.conf
i=0
for opts in "" "--option overlap=1 --option tune=1" "--option overlap=1 --option tune=1 --option graph_max=65536"; do
  i=$((i + 1))
  left=$((575 - (SECONDS - start)))
  [ $left -lt 60 ] && { mark "no time for CLI $i ($opts)"; continue; }
  mark "CLI Offline 15 s: $opts"
  timeout $left $PY -m suite.cli run --model dlrm-v2 --backend torch-cuda --scale full --rows 131072 --scenario offline \
    --precision fp8 --option timeline=1 $opts --user-conf /tmp/u.conf --output /tmp/res$i --no-progress 2>&1 | tail -1
  $PY -c "
import json,glob; d=json.load(open(glob.glob('/tmp/res$i/**/Offline/performance/run_1/result.json', recursive=True)[0]))
t=d['backend'].get('gpu_timeline') or {}
print('  timeline', {k: t.get(k) for k in ('busy_share','batch_ms_mean','items_mean','padded_share','busy_ns_per_item')}, 'tuned_ms', (d['backend'].get('fused') or {}).get('tuned_ms'))
" 2>&1 | tail -1
  mkdir -p $OUT/cli$i && find /tmp/res$i -name 'result.json' -exec cp {} $OUT/cli$i/ \; 2>/dev/null
done
kill $SMI
mark "done"
