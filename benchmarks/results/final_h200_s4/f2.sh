#!/usr/bin/env bash
# Call F2 (session 4, merged main): the eight DeepRecSys models in Server as suite run places them
# (GPU worker process), then dlrm-v3 Offline and Server at 0.9x with the default batcher.
set -u
start=$SECONDS
export PYTHONUNBUFFERED=1 RECSUITE_DATA_DIR=/tmp/data
PY=/tmp/v/bin/python OUT=$OUT PER_MODEL_S=${PER_MODEL_S:-25} bash benchmarks/deeprecsys_server_h200.sh 2>&1 | tail -40
echo "== dlrm-v3 ($((SECONDS - start)) s so far)"
PY=/tmp/v/bin/python ROWS=256 SKIP_PLAIN=1 SKIP_TESTS=1 SKIP_ACCURACY=1 SECONDS_RUN=12 SERVER_SECONDS=40 OUT=$OUT \
  timeout $(( ${END:-320} - (SECONDS - start) )) bash benchmarks/dlrm_v3_h200.sh 2>&1 | grep -v -i warn | tail -25
echo "total $((SECONDS - start)) s"
