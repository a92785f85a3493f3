#!/usr/bin/env bash
# Session 9, call 2: (1) staging by DMA, host and GPU time a DLRM-v2-sized batch: one
# cudaMemcpyAsync a span against one cudaMemcpyBatchAsync (new); (2) the cuda tests of torch-cuda
# (new: the batched copies), dlrm-v3 and HSTU; (3) dlrm-v2 fp8 as typed (dma=batch now) against
# dma=span: Offline 8 s, Server 0.9x for 20 s; (4) dlrm-v3 Server at 0.85x of Offline for 30 s.
set -u
start=$SECONDS
export PYTHONUNBUFFERED=1 PY=/tmp/v/bin/python RECSUITE_DATA_DIR=/tmp/data
python3 -m venv /tmp/v && echo $(python3 -c 'import site;print(site.getsitepackages()[0])') > $(/tmp/v/bin/python -c 'import sysconfig;print(sysconfig.get_paths()["purelib"])')/base.pth && /tmp/v/bin/pip install -q --no-index --no-deps .whl/*.whl && /tmp/v/bin/pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null 2>&1
left() { echo $((585 - (SECONDS - start))); }
echo "== span_dma.py ($((SECONDS - start)) s)"
timeout 60 $PY benchmarks/span_dma.py 2>&1 | grep -v -i warn | tee $OUT/span_dma.txt
echo "== cuda tests ($((SECONDS - start)) s)"
timeout 110 $PY -m pytest -q -p no:cacheprovider -m cuda tests/test_torch_cuda.py --durations=4 2>&1 | tail -9 | tee $OUT/cuda_tests.txt
timeout 50 $PY -m pytest -q -p no:cacheprovider -m cuda tests/test_kernels.py tests/test_backends.py -k "dlrm-v3 or dlrm_v3 or hstu" 2>&1 | tail -3 | tee -a $OUT/cuda_tests.txt
echo "== dlrm-v2 fp8 as typed (dma=batch) vs dma=span, Server 0.9x 20 s ($((SECONDS - start)) s)"
(cd benchmarks && timeout $(( $(left) - 150 )) $PY gpu_server.py --models dlrm-v2 --scale full --precisions fp8 --variants ';dma=span' \
  --fractions 0.9 --seconds 20 --offline-seconds 8 --no-auto --out $OUT/c2_dlrm.jsonl 2>&1 | grep -v -i warn | grep -v "^  warnings" | tail -14)
echo "== dlrm-v3 MLPerf size, Server 0.85x ($((SECONDS - start)) s)"
mkdir -p $OUT/v3
t=$(left); [ "$t" -gt 60 ] && timeout $t env OUT=$OUT/v3 ROWS=256 SKIP_PLAIN=1 SKIP_TESTS=1 SKIP_ACCURACY=1 SECONDS_RUN=12 SERVER_SECONDS=30 \
  SERVER_FRACTION=0.85 bash benchmarks/dlrm_v3_h200.sh 2>&1 | grep -v -i warn | grep -v "^-\|^total\|^d" | tail -12
echo "total $((SECONDS - start)) s"
