. benchmarks/h200_env.sh
S=.device/vs2.py
echo "== small, perm, consumer TMA, cp.async 1 and 2 consumers"
timeout 100 $PY $S small 4:1:3:1:24 5:1:3:1:24 5:2:4:1:24 2>&1 | tee -a /tmp/all.txt | grep -v -i warn | grep "^{\"mode" | tail -1 | cut -c1-900; echo
echo "== small, producer TMA with 56 registers"
timeout 100 $PY $S small 0:1:3:1:56 2>&1 | tee -a /tmp/all.txt | grep -v -i warn | grep "^{\"mode" | tail -1 | cut -c1-600; echo
echo "== small, producer TMA with 56 registers, 2 consumers"
timeout 100 $PY $S small 0:2:4:1:56 2>&1 | tee -a /tmp/all.txt | grep -v -i warn | grep "^{\"mode" | tail -1 | cut -c1-600; echo
echo "== big consumer-side"
timeout 150 $PY $S big 4:1:3:0:24 4:1:3:1:24 4:1:4:1:24 5:1:3:1:24 5:1:4:1:24 5:2:4:1:24 2>&1 | tee -a /tmp/all.txt | grep -v -i warn | grep "^{\"mode" | tail -1 | cut -c1-1500; echo
echo "== big producer-side"
timeout 150 $PY $S big 0:1:3:1:56 0:1:4:1:56 0:2:4:1:56 0:1:3:1:88 2>&1 | tee -a /tmp/all.txt | grep -v -i warn | grep "^{\"mode" | tail -1 | cut -c1-1500; echo
grep -i "error" /tmp/all.txt | sort | uniq -c | head -5
