#!/usr/bin/env bash
# Session 14, call 5: does copy staging (NCF's new default) help the other DeepRecSys models that
# keep 8 lanes? WnD, MT-WnD, RMC1: as typed (dma) against staging=copy, Offline 3 s, Server 0.5x 3 s.
set -u
start=$SECONDS
export PYTHONUNBUFFERED=1 PY=/tmp/v/bin/python RECSUITE_DATA_DIR=/tmp/data
[ -x /tmp/v/bin/python ] || { python3 -m venv /tmp/v && echo $(python3 -c 'import site;print(site.getsitepackages()[0])') > $(/tmp/v/bin/python -c 'import sysconfig;print(sysconfig.get_paths()["purelib"])')/base.pth && /tmp/v/bin/pip install -q --no-index --no-deps .whl/*.whl; }
/tmp/v/bin/pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null 2>&1
(cd benchmarks && timeout 250 $PY gpu_server.py --models wnd,mtwnd,dlrm-rmc1 --scale full --rows 65536 --precisions bf16 --fractions 0.5 \
  --seconds 3 --offline-seconds 3 --no-auto --variants ";staging=copy" --out $OUT/copy_others.jsonl 2>&1 | grep -v -i warn | grep "load\|Server\|FAILED")
echo "total $((SECONDS - start)) s"
