. benchmarks/h200_env.sh
nvidia-smi --query-gpu=name,clocks.sm,power.draw --format=csv,noheader
OK=""
for c in "5 1" "5 2" "4 1"; do
  set -- $c
  echo "== small vdbg $1 consumers $2"
  r=$(timeout 100 $PY .device/vs.py small $1 $2 2>&1 | grep -v -i warn | tail -3)
  echo "$r" | cut -c1-400
  if echo "$r" | grep -q '"mode"'; then OK="$OK$1"; fi
done
echo "OK=$OK"
[ -n "$OK" ] && OK=$OK timeout 240 $PY .device/vs.py big 2>&1 | grep -v -i warn | tail -30
