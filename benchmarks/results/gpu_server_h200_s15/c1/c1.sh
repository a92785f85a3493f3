#!/usr/bin/env bash
# Planned for the next H200 session (not run in session 14): where DLRM-v2 fp8 Offline's last 18%
# goes (the CLI made 0.82x of the rate of back-to-back replays). torch-cuda's new --option
# timeline=1 records CUDA events around every batch: the share of the run the GPU held a batch,
# the mean batch time under load, and the idle gaps between batches. If the mean batch time is
# about gpu.py's 1.39 ms at 32,768 items and the gaps hold the 18%, the host does not feed the GPU
# fast enough; if the batches themselves are slower, the GPU work is (DMA beside the kernels, the
# scores' copy, padding). The cuda tests of the timeline first; then as typed against timeline=1
# (the events' own cost), start_from_device=1 and compute=lanes, each with its timeline; then the
# CLI's Offline with the timeline. Copy to .device/ and run with carry .whl, .device.
set -u
start=$SECONDS
export PYTHONUNBUFFERED=1 PY=/tmp/v/bin/python RECSUITE_DATA_DIR=/tmp/data
[ -x /tmp/v/bin/python ] || { python3 -m venv /tmp/v && echo $(python3 -c 'import site;print(site.getsitepackages()[0])') > $(/tmp/v/bin/python -c 'import sysconfig;print(sysconfig.get_paths()["purelib"])')/base.pth && /tmp/v/bin/pip install -q --no-index --no-deps .whl/*.whl; }
/tmp/v/bin/pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null 2>&1
echo "== cuda tests ($((SECONDS - start)) s)"
timeout 120 $PY -m pytest -q -p no:cacheprovider tests/test_torch_cuda.py -k "timeline or busy_summary" 2>&1 | tail -3
echo "== dlrm-v2 fp8 Offline 8 s, Server 0.9x 20 s, with the timeline ($((SECONDS - start)) s)"
(cd benchmarks && timeout 330 $PY gpu_server.py --models dlrm-v2 --scale full --precisions fp8 --fractions 0.9 --seconds 20 \
  --offline-seconds 8 --no-auto --variants ";timeline=1;timeline=1,start_from_device=1;timeline=1,compute=lanes" \
  --out $OUT/timeline.jsonl 2>&1 | grep -v -i warn | tail -40)
echo "== the CLI's Offline with the timeline, 10 s ($((SECONDS - start)) s)"
printf 'dlrm-v2.Offline.min_duration = 10000\n' > /tmp/u.conf
timeout $((585 - (SECONDS - start))) $PY -m suite.cli run --model dlrm-v2 --backend torch-cuda --scale full --rows 131072 \
  --scenario offline --precision fp8 --option timeline=1 --user-conf /tmp/u.conf --output /tmp/res --no-progress 2>&1 | tail -3
$PY -c "import json,glob; d=json.load(open(glob.glob('/tmp/res/**/Offline/performance/run_1/result.json', recursive=True)[0])); print(d['performance']['metric'], d['backend'].get('gpu_timeline'))"
echo "total $((SECONDS - start)) s"
