#!/usr/bin/env bash
# Issue 19: every frontend on one GPU machine, streamed chat with shaped output (bench.shaped_output),
# each group's first burst measured cold (--cold-burst), as back-to-back device calls on one warm machine:
#   install1..install4   carry .whl/bN and .gpu (vLLM 0.26 kit + our wheels + SMG + store, 53 MiB chunks)
#   engine               carry .whl/b5 and .gpu: install, tokenizer, the in-process engine sweep (token
#                        ids); then our service is launched detached (its start overlaps the next call)
#   ours-a               carry .gpu: wait for the service, gRPC chat + token ids interleaved (cold burst
#                        first), the service's engine gauges traced every 0.2 s (bench/metrics_trace.py)
#   ours-b               carry .gpu: the gateway on that service (chat); stop the service
#   api4 | smg | vllm    carry .gpu: vllm-serve-api4, smg, vllm-serve: start, cold burst, chat sweep, stop
# Every call returns $OUT/results/<phase>/detail-*.json, the JIT warnings of its servers, a log tarball.
# Copy the detail files into one folder and `python -m bench report` it.
# CPU dry run: SMOKE=1 PROFILE=cpu-tiny MODEL_SRC=models/tiny-gpt-oss CONC="1 4" OUTPUT=16 COLD=4 \
#   PY=.venv/bin/python bash bench/gpu_anchors.sh engine   (then ours-a, ours-b, api4, smg)
set -uo pipefail
phase=${1:?phase}
PROFILE=${PROFILE:-gpt-oss-120b}
source "$(dirname "$0")/gpu_common.sh"
COMMON=(--profile "$PROFILE" --set "model=$MODEL" --set load_format=dummy --shaped-output)
if [ -z "${SMOKE:-}" ]; then COMMON+=(--set tensor_parallel_size=1); fi
read -r -a CONCS <<< "${CONC:-1 16 64 128 256}"
SWEEP=(--concurrency "${CONCS[@]}" --prompt-tokens "${PROMPT:-1000}" --output-tokens "${OUTPUT:-512}"
       --repeats "${REPEATS:-3}" --interleave --no-tokenizer --no-report)
# A prompt per request (UNIQUE=0: one shared prompt, as up to 2026-12-03). With dummy weights and shaped
# output, requests that share a prompt are identical at each position, so they route to the same experts:
# the MoE step then costs by how many positions a batch holds, i.e. by how the frontend spread its
# arrivals over steps, not by the batch size (bench/README.md, "Shared prompts").
if [ "${UNIQUE:-1}" = 1 ]; then SWEEP+=(--unique-prompts); fi
COLD_BURST=(--cold-burst "${COLD:-256}" --cold-tokens "${COLD_TOKENS:-128}")
SERVICE_LOG=$LOGS/service.log
PIDFILE=$LOGS/service.pid
# Every process compiles Triton kernels into one folder: the files' mtimes, beside the points'
# started_unix, show whether a stalled burst compiled something (the recurring-stall suspect).
# FRESH_TRITON=1 gives each server its own empty folder instead: every first burst then pays the full JIT, as
# on a first start. The shared default is a restart with a persisted cache, and it favours the later servers.
# Our service (started in the engine phase, measured in ours-a and ours-b) gets its own, not the bare engine's.
if [ -n "${FRESH_TRITON:-}" ]; then
  SERVICE_TRITON=$ROOT/.tmp/triton-service
  case $phase in ours-a | ours-b) export TRITON_CACHE_DIR=$SERVICE_TRITON ;; *) export TRITON_CACHE_DIR=$ROOT/.tmp/triton-$phase ;; esac
else
  export TRITON_CACHE_DIR=${TRITON_CACHE_DIR:-$ROOT/.tmp/triton-cache}
  SERVICE_TRITON=$TRITON_CACHE_DIR
fi
pack() {
  find "$TRITON_CACHE_DIR" -name "*.json" -printf '%T@ %P\n' 2>/dev/null | sort -n > "$OUT/triton-$phase.txt"
  grep -h "JIT compilation during inference\|warm-up done\|engine ready" "$LOGS"/*.log "$LOGS"/*/*.log \
    > "$OUT/jit-$phase.txt" 2>/dev/null
  tar czf "$OUT/logs-$phase.tgz" -C "$LOGS" --exclude=results . 2>/dev/null
}
trap pack EXIT
run() {  # `bench run` within what is left of this call (CALL_S, default 560 s of the 600 s limit)
  local left=$(( ${CALL_S:-560} - SECONDS - 15 ))
  timeout $(( left + 10 )) $PY -m bench run "${COMMON[@]}" "$@" --max-minutes "$(( left / 60 )).$(( left % 60 * 10 / 60 ))" \
    --out "$OUT/results/$phase" --log-dir "$LOGS/$phase" 2>&1 | grep -v '^{"run"' | tee -a "$LOGS/run-$phase.log"
}
case $phase in
  install[1-4]) bash .gpu/device_install.sh ".whl/b${phase#install}" ;;
  engine)
    if [ -z "${SMOKE:-}" ]; then install_last .whl/b5 || exit 1; fi
    setup
    $PY -c "import vllm, openai_harmony, grpc_health" || { echo "the kit is not installed: install1..4 first"; exit 1; }
    nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv 2>/dev/null
    $PY -m bench tokenizer "$MODEL_SRC" .tmp/bench-models || exit 1
    run --frontends engine --workloads tokens "${SWEEP[@]}" "${COLD_BURST[@]}"
    TRITON_CACHE_DIR=$SERVICE_TRITON $PY -m bench serve service "${COMMON[@]}" ${SERVE_SET:-} --port "$PORT" \
      --log "$SERVICE_LOG" --pidfile "$PIDFILE" --wait 0
    ;;
  ours-a)
    setup
    wait_service "$PIDFILE" "$SERVICE_LOG" 480
    $PY -m bench.metrics_trace http://127.0.0.1:9400/metrics "$OUT/metrics-trace.txt" &
    trace=$!
    run --frontends grpc --workloads chat tokens "${SWEEP[@]}" "${COLD_BURST[@]}" \
      --grpc-target "127.0.0.1:$PORT" --service-pidfile "$PIDFILE"
    kill $trace
    ;;
  ours-b)
    setup
    run --frontends gateway --workloads chat "${SWEEP[@]}" --grpc-target "127.0.0.1:$PORT" --service-pidfile "$PIDFILE"
    $PY -m bench stop --pidfile "$PIDFILE"
    ;;
  api4) setup; run --frontends vllm-serve-api4 --workloads chat "${SWEEP[@]}" "${COLD_BURST[@]}" ;;
  smg) setup; run --frontends smg --workloads chat "${SWEEP[@]}" "${COLD_BURST[@]}" ;;
  vllm) setup; run --frontends vllm-serve --workloads chat "${SWEEP[@]}" "${COLD_BURST[@]}" ;;
  *) echo "unknown phase $phase"; exit 2 ;;
esac
