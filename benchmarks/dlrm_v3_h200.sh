#!/usr/bin/env bash
# dlrm-v3 at MLPerf's request size (jagged histories of ~6,750 events, 2,048 candidates) on one
# GPU through LoadGen, plain attention against the fused Triton kernel in the same call, plus the
# torch-cuda accuracy gate (NE, accuracy, group AUC at 99.9% of the teacher's) and the cuda tests.
#
#   PY=/tmp/v/bin/python OUT=/tmp/out bash benchmarks/dlrm_v3_h200.sh
#
# SCALE: the item table's row cap (above 100,000: MLPerf-size requests); ROWS: requests generated;
# SECONDS_RUN: LoadGen's min_duration per run (a user.conf), shorter than the short profile's 60 s
# so that everything fits one device call; SERVER_SECONDS: the same for Server (default SECONDS_RUN);
# SERVER_TIMEOUT: the first fused Server run's limit in seconds, load included (default SERVER_SECONDS + 40);
# SERVER_FRACTION: Server's target as a fraction of the fused Offline rate (default 0.9);
# SKIP_PLAIN=1: the fused path only; SKIP_PLAIN_SERVER=1: the plain path in Offline only; SKIP_ACCURACY=1: no accuracy run; SERVER_ALT: options of a
# second fused Server run (say "--max-batch-items 8"); OFFLINE_ALT: options of a second fused Offline run
# right after the first (system h200-fused-alt; say "--option kept_fp32=fp32"); SKIP_TESTS=1: no pytest; TILES=1: benchmarks/hstu_gpu.py first
# (the kernel's tile shapes on MLPerf-size requests, the fused forward per batch size TILE_BATCHES);
# FUSED: the fused path's options (add "--option tune=1" to launch with the fastest tile measured at load).
set -u
PY=${PY:-python3}
OUT=${OUT:-/tmp/out}
SCALE=${SCALE:-1000000}
ROWS=${ROWS:-512}
SECONDS_RUN=${SECONDS_RUN:-30}
SERVER_SECONDS=${SERVER_SECONDS:-$SECONDS_RUN}
SERVER_TIMEOUT=${SERVER_TIMEOUT:-$((SERVER_SECONDS + 40))}  # a Server run's limit, load included (about 35 s at the 100 M cap)
BACKEND=${BACKEND:-torch-cuda}
PRECISION=${PRECISION:-bf16}
FUSED=${FUSED-"--option fused=1"}  # a CPU dry run sets FUSED= and PLAIN= (torch-cpu has no kernel)
PLAIN=${PLAIN-"--option fused=0"}  # the fused path is torch-cuda's default for dlrm-v3 in bf16
R=/tmp/v3res
mkdir -p "$OUT" "$R"
T0=$(date +%s)
stamp() { echo "[$(( $(date +%s) - T0 )) s] $*"; }
cat > /tmp/v3.conf <<CONF
dlrm-v3.Offline.min_duration = $((SECONDS_RUN * 1000))
dlrm-v3.Server.min_duration = $((SECONDS_RUN * 1000))
CONF
cat > /tmp/v3s.conf <<CONF
dlrm-v3.Offline.min_duration = $((SECONDS_RUN * 1000))
dlrm-v3.Server.min_duration = $((SERVER_SECONDS * 1000))
CONF
common=(--model dlrm-v3 --backend "$BACKEND" --scale "$SCALE" --rows "$ROWS" --precision "$PRECISION" --output "$R"
        --data-dir /tmp/v3data --no-progress --overwrite --user-conf /tmp/v3.conf)
# A completed run's rate; 0 for an interrupted or failed one (a partial run's rate is not Offline's).
rate() { "$PY" -c "import json,sys; d=json.load(open(sys.argv[1])); print(d['performance']['metric']['value'] if d['status'] == 'valid' else 0)" "$1"; }

stamp "cuda tests"
[ -n "${SKIP_TESTS:-}" ] || timeout ${TESTS_S:-90} "$PY" -m pytest -q -p no:cacheprovider -m cuda tests/test_kernels.py tests/test_backends.py \
  tests/test_torch_cuda.py -k "dlrm-v3 or dlrm_v3 or hstu" 2>&1 | tail -5 | tee "$OUT/cuda_tests.txt"

if [ -n "${TILES:-}" ]; then  # the attention's tile shapes and the fused forward per batch size
  stamp "hstu_gpu.py"
  timeout ${TILES_S:-120} "$PY" benchmarks/hstu_gpu.py --scale "$SCALE" --precision "$PRECISION" ${HSTU_ARGS:---tiles} \
    --batch ${TILE_BATCHES:-1 4 8 11} --seconds ${TILE_SECONDS:-1.5} 2>&1 | tee "$OUT/hstu_gpu.txt"
fi

if [ -z "${SKIP_ACCURACY:-}" ]; then
  stamp "accuracy fused (data generated first)"
  timeout 150 "$PY" -m suite.cli run "${common[@]}" --scenario offline --system h200-fused $FUSED --mode accuracy 2>&1 | tail -3
fi
stamp "Offline fused"
# Without the accuracy run first, this run generates the data (about a minute at MLPerf's size).
timeout $((SECONDS_RUN + 60 + ${SKIP_ACCURACY:+90} + 0)) "$PY" -m suite.cli run "${common[@]}" --scenario offline --system h200-fused $FUSED 2>&1 | tail -3
if [ -n "${OFFLINE_ALT:-}" ]; then
  stamp "Offline fused with $OFFLINE_ALT"
  timeout $((SECONDS_RUN + 60)) "$PY" -m suite.cli run "${common[@]}" --scenario offline --system h200-fused-alt $FUSED $OFFLINE_ALT 2>&1 | tail -3
fi
if [ -z "${SKIP_PLAIN:-}" ]; then
  stamp "Offline plain"
  timeout $((SECONDS_RUN + 60)) "$PY" -m suite.cli run "${common[@]}" --scenario offline --system h200-plain $PLAIN 2>&1 | tail -3
fi
F=$(rate "$R/h200-fused/dlrm-v3/Offline/performance/run_1/result.json" 2>/dev/null || echo 0)
P=$(rate "$R/h200-plain/dlrm-v3/Offline/performance/run_1/result.json" 2>/dev/null || echo 0)
FRAC=${SERVER_FRACTION:-0.9}
FQ=$("$PY" -c "print(round($FRAC * float('$F'), 1))")
PQ=$("$PY" -c "print(round(0.9 * float('$P'), 1))")
stamp "Server fused at $FQ ($FRAC x $F)"
[ "$F" != 0 ] && timeout "$SERVER_TIMEOUT" "$PY" -m suite.cli run "${common[@]}" --user-conf /tmp/v3s.conf --scenario server --system h200-fused $FUSED --target-qps "$FQ" 2>&1 | tail -3
report() {  # the summary and the raw runs so far, into $OUT
"$PY" - "$R" <<'PYEOF' | tee "$OUT/summary.txt"
import json, pathlib, sys
for f in sorted(pathlib.Path(sys.argv[1]).rglob("result.json")):
    d = json.loads(f.read_text())
    perf, acc, h = d.get("performance") or {}, d.get("accuracy") or {}, d.get("harness") or {}
    lat = (perf.get("latency_ns") or {})
    row = {"run": str(f.parent.relative_to(sys.argv[1])), "status": d.get("status"),
           "metric": (perf.get("metric") or {}).get("value"), "validity": perf.get("validity"),
           "p99_ms": (lat.get("99.00") or 0) / 1e6 if lat else None,
           "mean_batch": round(h.get("mean_batch_items", 0), 1), "errors": d.get("errors"),
           "max_batch": (d.get("settings") or {}).get("max_batch_items"),
           "in_flight": (d.get("settings") or {}).get("batches_in_flight"),
           "bucket_ms": (d.get("backend") or {}).get("bucket_ms"), "load_s": (d.get("backend") or {}).get("load_s"),
           "fp32_matmuls": (d.get("backend") or {}).get("fp32_matmuls"),
           "cuda_graphs": (d.get("backend") or {}).get("cuda_graphs"), "capture_s": (d.get("backend") or {}).get("capture_s"),
           "jagged_graphs": (d.get("backend") or {}).get("jagged_graphs")}
    if acc:
        row.update({k: acc.get(k) for k in ("ne", "accuracy", "gauc", "reference", "passed", "queries")})
    print(json.dumps(row))
PYEOF
(cd "$R" && tar czf "$OUT/runs.tgz" --exclude='mlperf_log_accuracy.json' --exclude='mlperf_log_trace.json' . 2>/dev/null)
ls -la "$OUT"
}
report >/dev/null  # kept even if what follows runs past the call's limit
if [ -n "${SERVER_ALT:-}" ]; then  # a second fused Server run with these options (system h200-fused-alt)
  stamp "Server fused at $FQ with $SERVER_ALT"
  timeout $((SERVER_SECONDS + 40)) "$PY" -m suite.cli run "${common[@]}" --user-conf /tmp/v3s.conf --scenario server --system h200-fused-alt $FUSED $SERVER_ALT --target-qps "$FQ" 2>&1 | tail -3
fi
if [ -z "${SKIP_PLAIN:-}" ] && [ -z "${SKIP_PLAIN_SERVER:-}" ]; then
  stamp "Server plain at $PQ (0.9 x $P)"
  timeout $((SERVER_SECONDS + 40)) "$PY" -m suite.cli run "${common[@]}" --user-conf /tmp/v3s.conf --scenario server --system h200-plain $PLAIN --target-qps "$PQ" 2>&1 | tail -3
fi
stamp "done"
report
