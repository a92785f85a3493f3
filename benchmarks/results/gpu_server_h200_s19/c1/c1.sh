#!/usr/bin/env bash
# Session 19, call 1: DLRM-v2 fp8 Server from the CLI as a user types it, at 70,000 QPS (0.9x of the
# 77,777.1 samples/s the same CLI's 60-s Offline made as typed in session 18's call 3) for 300 s,
# with graph buckets now every 4,096 items above 32,768 (session 18's 300-s run at 66,309 padded
# its batches by 7.1% with steps of 8,192); the timeline's 10-s series, the driver's garbage
# collections and pause_probe.py beside it. About 480 s on a fresh machine.
set -u
start=$SECONDS
export PYTHONUNBUFFERED=1 PY=/tmp/v/bin/python RECSUITE_DATA_DIR=/tmp/data
[ -x /tmp/v/bin/python ] || { python3 -m venv /tmp/v && echo $(python3 -c 'import site;print(site.getsitepackages()[0])') > $(/tmp/v/bin/python -c 'import sysconfig;print(sysconfig.get_paths()["purelib"])')/base.pth && /tmp/v/bin/pip install -q --no-index --no-deps .whl/*.whl; }
/tmp/v/bin/pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null 2>&1
R=clocks_event_reasons.active
nvidia-smi --query-gpu=$R --format=csv >/dev/null 2>&1 || R=clocks_throttle_reasons.active
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw,temperature.gpu,utilization.gpu,$R --format=csv,noheader -lms 1000 > $OUT/smi.csv 2>&1 &
SMI=$!
$PY benchmarks/pause_probe.py --seconds 570 --out $OUT/probe.json --stop /tmp/probe.stop > $OUT/probe.txt 2>&1 &
PROBE=$!
echo "kernel $(uname -r); $(nproc) cores"
printf 'dlrm-v2.Server.min_duration = 300000\n' > /tmp/s.conf
echo "== Server 70,000 QPS, 300 s, as typed but for the timeline ($((SECONDS - start)) s)"
timeout $((585 - (SECONDS - start))) $PY -m suite.cli run --model dlrm-v2 --backend torch-cuda --scale full --rows 131072 --precision fp8 \
  --output /tmp/res --no-progress --scenario server --target-qps 70000 --option timeline=1 --user-conf /tmp/s.conf 2>&1 | tail -2 | tee $OUT/server.txt
echo "ran until $((SECONDS - start)) s"
find /tmp/res -name result.json -path '*performance*' -exec cp {} $OUT/server_result.json \; 2>/dev/null
find /tmp/res -name mlperf_log_summary.txt -exec cp {} $OUT/ \; 2>/dev/null
touch /tmp/probe.stop
$PY -c "
import json,sys; d=json.load(open(sys.argv[1])); p=d['performance']; h=d['harness']; b=d['backend']
print('valid', d['valid'], p['validity'], p.get('invalid_reason')); print('latency_ns', p.get('latency_ns')); print('metric', p.get('metric'))
print('load_s', b.get('load_s'), 'capture_s', b.get('capture_s'), 'host_us_per_batch', b.get('host_us_per_batch'), 'predict_us', b.get('predict_us_per_batch'))
t=b.get('gpu_timeline') or {}; print({k: v for k, v in t.items() if k != 'series'}); [print(r) for r in t.get('series', [])]
print('harness', {k: v for k, v in h.items() if k not in ('issue_stalls',)}); print('stalls', h.get('issue_stalls'))
print('warmup', d.get('warmup'))" $OUT/server_result.json
wait $PROBE
cat $OUT/probe.txt
kill $SMI
echo "total $((SECONDS - start)) s"
