. benchmarks/h200_env.sh
export CUDA_LAUNCH_BLOCKING=1
for n in 1024 1424 1440 1536; do
  N_COLS=$n timeout 60 $PY .device/tma_probe.py fp8 128 64 device 2>&1 | grep -E "ok|bad" | sed "s/^/cols $n: /"
  N_COLS=$n timeout 60 $PY .device/tma_probe.py fp8 128 64 device 0 16 2>&1 | grep -E "ok|bad" | sed "s/^/cols $n col0 16: /"
done
for p in 128 1024; do
  echo "== vdbg fp8 padto $p"
  PADTO=$p FIRST=ref RECSUITE_VDBG=0 timeout 120 $PY .device/vdbg.py fp8 2>&1 | grep -v -i warn | grep -E "ran|rror" | cut -c1-300 | tail -3
done
