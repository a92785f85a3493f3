#!/usr/bin/env bash
# Session 13, call 4: dlrm-v3 with the tensor-descriptor attention as the default tile (cuda tests,
# the accuracy gate, Offline 12 s, Server at 0.9x of it for 90 s); then WnD, MT-WnD and RMC1 with 8
# lanes (their default) against 2 (NCF's new default), Offline 2 s and Server at 0.5x for 2 s.
set -u
start=$SECONDS
export PYTHONUNBUFFERED=1 PY=/tmp/v/bin/python RECSUITE_DATA_DIR=/tmp/data
[ -x /tmp/v/bin/python ] || { python3 -m venv /tmp/v && echo $(python3 -c 'import site;print(site.getsitepackages()[0])') > $(/tmp/v/bin/python -c 'import sysconfig;print(sysconfig.get_paths()["purelib"])')/base.pth && /tmp/v/bin/pip install -q --no-index --no-deps .whl/*.whl; }
/tmp/v/bin/pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null 2>&1
left() { echo $((580 - (SECONDS - start))); }
echo "== cuda tests ($((SECONDS - start)) s)"
timeout 90 $PY -m pytest -q -p no:cacheprovider -m cuda tests/test_kernels.py tests/test_backends.py -k "hstu or dlrm-v3 or dlrm_v3" 2>&1 | tail -3 | tee $OUT/cuda_tests.txt
echo "== dlrm-v3, tma default: accuracy, Offline, Server 0.9x 90 s ($((SECONDS - start)) s)"
mkdir -p $OUT/v3
ROWS=256 SKIP_PLAIN=1 SKIP_TESTS=1 SECONDS_RUN=12 SERVER_SECONDS=90 OUT=$OUT/v3 \
  timeout 320 bash benchmarks/dlrm_v3_h200.sh 2>&1 | grep -v -i warn | grep '^\[\|^{' | cut -c1-400
echo "== DeepRecSys lanes 8 vs 2 ($((SECONDS - start)) s)"
cd benchmarks
for m in wnd mtwnd dlrm-rmc1; do
  t=$(left); [ "$t" -gt 40 ] || { echo "$m: not run (time)"; continue; }
  [ "$t" -gt 100 ] && t=100
  timeout $t $PY gpu_server.py --models $m --scale full --rows 65536 --precisions bf16 --fractions 0.5 --seconds 2 \
    --offline-seconds 2 --no-auto --variants "lanes=8;lanes=2" --out $OUT/drs_lanes.jsonl 2>&1 | grep -v -i warn | grep -v "issue stalls" | cut -c1-330
  echo "$m: exit ${PIPESTATUS[0]} ($((SECONDS - start)) s)"
done
echo "total $((SECONDS - start)) s"
