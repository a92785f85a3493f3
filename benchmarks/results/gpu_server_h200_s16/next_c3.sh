#!/usr/bin/env bash
# Planned for the next H200 session: DLRM-v2 fp8 from the CLI as typed, now that graphs reach 65,536
# items by default in fp8 (session 16 measured that only through gpu_server.py): the accuracy run
# (the 99% gate at the new batch size), then Offline with min_duration 60 s and the timeline.
# About 260 s on a fresh machine. Copy to .device/ and run with carry .whl, .device.
set -u
start=$SECONDS
export PYTHONUNBUFFERED=1 PY=/tmp/v/bin/python RECSUITE_DATA_DIR=/tmp/data
[ -x /tmp/v/bin/python ] || { python3 -m venv /tmp/v && echo $(python3 -c 'import site;print(site.getsitepackages()[0])') > $(/tmp/v/bin/python -c 'import sysconfig;print(sysconfig.get_paths()["purelib"])')/base.pth && /tmp/v/bin/pip install -q --no-index --no-deps .whl/*.whl; }
/tmp/v/bin/pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null 2>&1
common=(--model dlrm-v2 --backend torch-cuda --scale full --rows 131072 --precision fp8 --output /tmp/res --no-progress)
echo "== accuracy ($((SECONDS - start)) s)"
timeout 200 $PY -m suite.cli run "${common[@]}" --scenario offline --mode accuracy 2>&1 | tail -1 | tee $OUT/accuracy.txt
printf 'dlrm-v2.Offline.min_duration = 60000\n' > /tmp/u.conf
echo "== Offline 60 s, as typed but for the timeline ($((SECONDS - start)) s)"
timeout $((570 - (SECONDS - start))) $PY -m suite.cli run "${common[@]}" --scenario offline --option timeline=1 \
  --user-conf /tmp/u.conf 2>&1 | tail -1 | tee $OUT/offline.txt
find /tmp/res -name result.json -path '*performance*' -exec cp {} $OUT/offline_result.json \; 2>/dev/null
echo "total $((SECONDS - start)) s"
