. benchmarks/h200_env.sh
export CUDA_LAUNCH_BLOCKING=1
ls /usr/local/cuda/bin 2>/dev/null | head -30; which compute-sanitizer cuda-gdb cuobjdump 2>&1 | head
for v in "fp8 0 v8first" "bf16 0 v8first" "fp8 0 ref"; do
  set -- $v
  echo "== $v"
  FIRST=$3 RECSUITE_VDBG=$2 timeout 120 $PY .device/vdbg.py $1 2>&1 | grep -v -i warn | grep -E "ran|rror" | cut -c1-300 | tail -3
done
CS=$(which compute-sanitizer 2>/dev/null || ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null | head -1)
if [ -n "$CS" ]; then
  echo "== sanitizer"
  FIRST=ref RECSUITE_VDBG=0 timeout 200 $CS --print-limit 5 $PY .device/vdbg.py fp8 2>&1 | grep -v -i warn | head -60
fi
