#!/usr/bin/env bash
# Session 11, call 4: dlrm-v3 Server at 655.6 (0.9x call 3's graph Offline, 728.4) for 150 s, defaults.
set -u
start=$SECONDS
export PYTHONUNBUFFERED=1 PY=/tmp/v/bin/python RECSUITE_DATA_DIR=/tmp/data
[ -x /tmp/v/bin/python ] || { python3 -m venv /tmp/v && echo $(python3 -c 'import site;print(site.getsitepackages()[0])') > $(/tmp/v/bin/python -c 'import sysconfig;print(sysconfig.get_paths()["purelib"])')/base.pth && /tmp/v/bin/pip install -q --no-index --no-deps .whl/*.whl; }
/tmp/v/bin/pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null 2>&1
printf 'dlrm-v3.Server.min_duration = 150000\n' > /tmp/v3long.conf
ls /tmp/v3data 2>/dev/null | head -2
timeout $((270 - (SECONDS - start))) $PY -m suite.cli run --model dlrm-v3 --backend torch-cuda --scale 1000000 --rows 256 --precision bf16 \
  --output /tmp/v3long --data-dir /tmp/v3data --no-progress --overwrite --user-conf /tmp/v3long.conf --scenario server \
  --system h200-graphs --target-qps 655.6 2>&1 | grep -v -i warn | tail -4
f=/tmp/v3long/h200-graphs/dlrm-v3/Server/performance/run_1
sed -n 1,40p $f/mlperf_log_summary.txt | tee $OUT/summary_150s.txt | grep -E "per second|Result is|percentile|Min dur|min_duration"
cp $f/result.json $OUT/ 2>/dev/null
echo "total $((SECONDS - start)) s"
