. benchmarks/h200_env.sh
S=.device/vs2.py
timeout 250 $PY $S big -1:1:3:0:24 -1:1:3:0:40 -1:1:3:0:56 -1:1:3:0:88 -1:1:3:0:120 -1:1:3:0:152 -1:2:4:0:24 -1:2:4:0:40 0:1:3:1:88 0:1:3:1:120 0:1:3:1:152 0:1:3:1:200 0:1:4:1:120 0:2:4:1:40 -1:1:3:0:24 2>&1 | tee -a /tmp/all.txt | grep -v -i warn | grep "^{\"mode" | tail -1 | sed 's/, "/,\n"/g'; echo
grep -i "error" /tmp/all.txt | sort | uniq -c | head -5
