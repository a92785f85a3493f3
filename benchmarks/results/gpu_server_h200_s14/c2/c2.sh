#!/usr/bin/env bash
# Planned for the next H200 session (not run in session 13): NCF's Offline as typed (2 lanes,
# dma staging, lanes that sleep: 210-224k q/s in session 13) against the settings of the fourth
# session's 308,993 q/s (8 spinning lanes, the host gathering a batch into a pinned buffer), with 2
# lanes too, each with Server at 0.5x and 0.7x for 10 s: is the typed command within 10% of the best?
set -u
start=$SECONDS
export PYTHONUNBUFFERED=1 PY=/tmp/v/bin/python RECSUITE_DATA_DIR=/tmp/data
[ -x /tmp/v/bin/python ] || { python3 -m venv /tmp/v && echo $(python3 -c 'import site;print(site.getsitepackages()[0])') > $(/tmp/v/bin/python -c 'import sysconfig;print(sysconfig.get_paths()["purelib"])')/base.pth && /tmp/v/bin/pip install -q --no-index --no-deps .whl/*.whl; }
/tmp/v/bin/pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null 2>&1
(cd benchmarks && timeout 560 $PY gpu_server.py --models ncf --scale full --rows 65536 --precisions bf16 --fractions 0.5,0.7 \
  --seconds 10 --offline-seconds 3 --no-auto --variants ";staging=copy;staging=copy,lanes=8,sync=spin;lanes=8,sync=spin;staging=copy,lanes=4" \
  --out $OUT/ncf_staging.jsonl 2>&1 | grep -v -i warn | tail -40)
echo "total $((SECONDS - start)) s"
