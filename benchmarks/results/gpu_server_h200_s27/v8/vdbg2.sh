. benchmarks/h200_env.sh
export CUDA_LAUNCH_BLOCKING=1
for v in "fp8 0 aligned" "bf16 0 aligned" "fp8 1 aligned" "fp8 0 unaligned"; do
  set -- $v
  echo "== $v"
  if [ $3 = aligned ]; then export ALIGNED=1; else unset ALIGNED; fi
  RECSUITE_VDBG=$2 timeout 120 $PY .device/vdbg.py $1 2>&1 | grep -v -i warn | grep -E "ran|rror" | cut -c1-300 | tail -2
done
