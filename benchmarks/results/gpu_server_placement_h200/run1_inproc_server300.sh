#!/usr/bin/env bash
set -u
export PYTHONUNBUFFERED=1 PY=/tmp/v/bin/python RECSUITE_DATA_DIR=/tmp/data
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
cd benchmarks
timeout 470 $PY gpu_server.py --models dlrm-v2 --scale 4000000 --rows 131072 --precisions fp8 --fractions 0.9 \
  --seconds 300 --offline-seconds 8 --no-auto --out $OUT/server300.jsonl 2>&1 | grep -v Warning | tee $OUT/server300.txt
