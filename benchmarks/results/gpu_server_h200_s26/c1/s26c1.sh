#!/usr/bin/env bash
# Session 26 call 1: (1) a plain TMA copy of one tile by dtype/box/descriptor kind, one process each;
# (2) the wip/qkv-fp8 tree's kernel by tile shape (its own venv), ran or not, and timings.
set -u
start=$SECONDS
. benchmarks/h200_env.sh
for a in "fp8 128 64 device" "fp8 128 64 host" "u8 128 64 device" "bf16 128 64 device" "fp8 64 128 device" \
         "fp8 128 128 device" "fp8 64 64 device" "fp8 128 64 device 64" "fp8 128 64 device 0 16" "fp8 128 64 device 128"; do
  echo "probe $(CUDA_LAUNCH_BLOCKING=1 timeout 60 $PY .device/tma_probe.py $a 2>&1 | grep -v -i warn | tail -1)"
done
echo "== branch tree ($((SECONDS - start)) s)"
mkdir -p /tmp/q && tar xzf .device/qkv.tgz -C /tmp/q && cp .device/diag2.py /tmp/q/
[ -x /tmp/vq/bin/python ] || { python3 -m venv /tmp/vq && echo $(python3 -c 'import site;print(site.getsitepackages()[0])') > $(/tmp/vq/bin/python -c 'import sysconfig;print(sysconfig.get_paths()["purelib"])')/base.pth && /tmp/vq/bin/pip install -q --no-index --no-deps .whl/*.whl; }
(cd /tmp/q && /tmp/vq/bin/pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null 2>&1)
for t in "64 128 3" "128 128 3" "64 128 2" "64 64 3"; do
  echo "diag2 $(cd /tmp/q && CUDA_LAUNCH_BLOCKING=1 timeout 90 /tmp/vq/bin/python diag2.py $t 2>&1 | grep -v -i warn | tail -1)"
done
echo "== done ($((SECONDS - start)) s)"
