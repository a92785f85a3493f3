. benchmarks/h200_env.sh
for v in "fp8 0 ref" "bf16 0 ref"; do
  set -- $v
  echo "== $v"
  CUDA_LAUNCH_BLOCKING=1 FIRST=$3 RECSUITE_VDBG=$2 timeout 120 $PY .device/vdbg.py $1 2>&1 | grep -v -i warn | grep -E "ran|rror" | cut -c1-400 | tail -3
done
echo "== v8 timing"
timeout 200 $PY .device/v8.py 2>&1 | grep -v -i warn | tail -40
