#!/usr/bin/env bash
# Issue 19 (a): the cold first 256-stream burst on our service, without and with the batch-range
# warm-up (service/warmup.py), on one warm GPU machine, as back-to-back device calls:
#   install1..install4   carry .whl/bN and .gpu (vLLM 0.26 kit + our wheels + SMG, re-split to 53 MiB)
#   cold                 carry .whl/b5 and .gpu: install, tokenizer, service with warmup=false, three
#                        256-stream bursts (the first is the cold one), stop; start warmup=true detached
#   warm                 carry .gpu: wait for it, the same three bursts, stop
# Each returns $OUT/results (detail-*.json per variant), the service logs and the JIT warning counts.
# CPU dry run: SMOKE=1 PROFILE=cpu-tiny MODEL_SRC=models/tiny-gpt-oss CONC=16 OUTPUT=16 PY=.venv/bin/python
set -uo pipefail
phase=${1:?phase}
PROFILE=${PROFILE:-gpt-oss-120b}
source "$(dirname "$0")/gpu_common.sh"
COMMON=(--profile "$PROFILE" --set "model=$MODEL" --set load_format=dummy --set tensor_parallel_size=1)
BURST=(--frontends grpc --workloads tokens --concurrency "${CONC:-256}" --prompt-tokens "${PROMPT:-1000}"
       --output-tokens "${OUTPUT:-128}" --repeats 3 --no-tokenizer --no-report --log-dir "$LOGS")
pack() {
  cp -r "$LOGS/results" "$OUT/" 2>/dev/null
  grep -h "JIT compilation during inference\|warm-up done\|engine ready" "$LOGS"/service-*.log > "$OUT/jit.txt" 2>/dev/null
  tar czf "$OUT/logs-$phase.tgz" -C "$LOGS" . 2>/dev/null
}
trap pack EXIT
serve() {  # $1 = warmup true|false, $2 = seconds to wait (0: detached, no wait)
  $PY -m bench serve service "${COMMON[@]}" --set "warmup=$1" --port $PORT --log "$LOGS/service-warmup-$1.log" \
    --pidfile "$LOGS/service-$1.pid" --wait "$2"
}
bursts() {  # $1 = warmup true|false
  $PY -m bench run "${BURST[@]}" --grpc-target 127.0.0.1:$PORT --service-pidfile "$LOGS/service-$1.pid" \
    "${COMMON[@]}" --out "$LOGS/results/warmup-$1" --max-minutes 4 2>&1 | grep -v "^{" | tee -a "$LOGS/run-$1.log"
  $PY -m bench stop --pidfile "$LOGS/service-$1.pid"
}
case $phase in
  install[1-4]) bash .gpu/device_install.sh ".whl/b${phase#install}" ;;
  cold)
    if [ -z "${SMOKE:-}" ]; then install_last .whl/b5 || exit 1; fi
    setup
    nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv 2>/dev/null
    $PY -m bench tokenizer "$MODEL_SRC" .tmp/bench-models || exit 1
    serve false 420 || { tail -30 "$LOGS/service-warmup-false.log"; exit 1; }
    bursts false
    serve true 0
    ;;
  warm)
    setup
    wait_service "$LOGS/service-true.pid" "$LOGS/service-warmup-true.log" 480
    bursts true
    ;;
  *) echo "unknown phase $phase"; exit 2 ;;
esac
