. benchmarks/h200_env.sh
S=.device/vs2.py
echo "== small late"
timeout 100 $PY $S small 0:1:3:1:88:1 0:2:4:1:40:1 2>&1 | tee -a /tmp/all.txt | grep -v -i warn | grep "^{\"mode" | tail -1 | cut -c1-900; echo
echo "== big"
timeout 250 $PY $S big -1:1:3:0:24 0:1:3:1:88:0 0:1:3:1:88:1 0:1:3:1:56:1 0:1:3:1:40:1 0:1:4:1:88:1 0:2:4:1:40:1 0:2:4:1:24:1 -1:2:4:0:24 2>&1 | tee -a /tmp/all.txt | grep -v -i warn | grep "^{\"mode" | tail -1 | sed 's/, "/,\n"/g'; echo
grep -i "error" /tmp/all.txt | sort | uniq -c | head -5
