. benchmarks/h200_env.sh
export CUDA_LAUNCH_BLOCKING=1
for v in "bf16 0" "fp8 2" "fp8 1" "fp8 0" "fp8 3" "bf16 0 two" "fp8 0 two"; do
  set -- $v
  echo "== $v"
  RECSUITE_VDBG=$2 timeout 120 $PY .device/vdbg.py $1 $3 2>&1 | grep -v -i warn | grep -E "ran|rror" | cut -c1-300 | tail -2
done
