#!/usr/bin/env bash
# Call F1 (session 4, merged main): the kernel tests on the GPU (persistent TMA kernel, per-table
# rows, fused forward vs eager); gpu.py (lookups incl. RMC1/RMC2 vs the copy rate; DLRM-v2 full
# tables: plain loop vs the fp8 and bf16 defaults with the layer sweep); then the CLI as typed at
# full scale through LoadGen: Offline fp8, Server fp8 at 0.9x for 60 s, Offline bf16.
set -u
start=$SECONDS
END=${END:-430}
export PYTHONUNBUFFERED=1 PY=/tmp/v/bin/python S=/tmp/v/bin/suite RECSUITE_DATA_DIR=/tmp/data
left() { echo $(( END - (SECONDS - start) )); }
git log --oneline -1 > $OUT/commit.txt 2>/dev/null
(time $PY -m pytest -q -p no:cacheprovider tests/test_kernels.py -k "persistent or table or forward_matches" 2>&1 | tail -3) 2>&1 | tee $OUT/gpu_tests.txt
(cd benchmarks && timeout 190 $PY gpu.py --sections kernels,dlrm-v2 --dlrm-items 65536 --dlrm-batch 16384 --layers --profile --out $OUT \
  --dlrm-variants "dense=fp8;dense=bf16" 2>&1 | grep -v -i warn | tee $OUT/gpu.txt)
printf 'dlrm-v2.Offline.min_duration = 10000\ndlrm-v2.Server.min_duration = 60000\n' > /tmp/u.conf
A="--model dlrm-v2 --backend torch-cuda --scale full --rows 131072 --no-progress --output /tmp/r --user-conf /tmp/u.conf"
run() {  # name, then suite run's options
  local name=$1; shift
  local l=$(left); echo "== $name $* ($l s left)"
  [ $l -lt 40 ] && { echo "skipped: no time"; return; }
  (time timeout $l $S run $A --system $name "$@") 2>&1 | grep -v -i warn | tail -5
}
run h200-fp8 --scenario offline --precision fp8
off=$($PY -c "import json;print(json.load(open('/tmp/r/h200-fp8/dlrm-v2/Offline/performance/run_1/result.json'))['performance']['metric']['value'])" 2>/dev/null || echo 0)
echo "offline fp8 samples/s $off"
tq=$($PY -c "print(round(0.9*float('$off')))")
[ "$tq" != "0" ] && run h200-fp8 --scenario server --precision fp8 --target-qps $tq
run h200-bf16 --scenario offline --precision bf16
$S summary /tmp/r 2>&1 | tee $OUT/summary.txt
for f in /tmp/r/*/dlrm-v2/*/performance/run_1/result.json; do
  n=$(echo $f | cut -d/ -f4)-$(echo $f | cut -d/ -f6); cp $f $OUT/$n.json; done
echo "total $((SECONDS - start)) s"
