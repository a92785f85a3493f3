# Device call 1 (one H200): cuda tests of torch-cuda, dlrm-v2 Server sweep, DeepRecSys models in Server.
export PYTHONUNBUFFERED=1 PY=/tmp/v/bin/python RECSUITE_DATA_DIR=/tmp/data
nvidia-smi --query-gpu=name,clocks.max.sm,power.limit --format=csv,noheader
(timeout 45 $PY -m pytest -q -m cuda -p no:cacheprovider tests/test_torch_cuda.py 2>&1 | tail -4) | tee $OUT/cuda_tests.txt
cd benchmarks
timeout 95 $PY gpu_server.py --models dlrm-v2 --scale 4000000 --rows 131072 --precisions fp8,bf16 --fractions 0.7,0.8,0.9 \
  --seconds 5 --offline-seconds 3 --out $OUT/dlrm_v2.jsonl 2>&1 | grep -v Warning | tee $OUT/dlrm_v2.txt
timeout 90 $PY gpu_server.py --models dlrm-rmc1,dlrm-rmc2,dlrm-rmc3,ncf,wnd,mtwnd,din,dien --scale full --rows 65536 \
  --precisions bf16 --fractions 0.5 --seconds 2 --offline-seconds 2 --out $OUT/deeprecsys.jsonl 2>&1 | grep -v Warning | tee $OUT/deeprecsys.txt
