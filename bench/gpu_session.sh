#!/usr/bin/env bash
# The GPU run (gpt-oss-120b shapes, dummy MXFP4 weights, seed profile, TP=4 unless TP=... is set) as
# back-to-back device calls on ONE warm machine; every phase is one `run` call (bench/README.md):
#   install1..4          carry .whl/b1 (.. b4) and .gpu: vLLM 0.26 in pieces + our wheels (bench/gpu_wheels.py)
#   engine               carry .whl/b5 and .gpu: the last chunk, install (install_last), checks, tokenizer,
#                        the in-process engine sweep
#   grpc                 start our service detached (setsid: it outlives the call), the gRPC sweeps
#   gateway              the gateway sweep on that service, stop it, start `vllm serve` detached
#   vllm                 wait for `vllm serve`, its sweeps, stop it
#   interleave           (optional; after install1..4, carry .whl/b5 too) token-id and chat sweeps
#                        alternating on one service: is the chat gap real or drift over time?
#   burst                (optional, no GPU) bench/burst_probe.py: render_workers 0 vs 4 on this machine
# Each phase returns $OUT/results/detail-*.json (all phases so far) and $OUT/logs-<phase>.tgz.
# Dry run on a CPU box: SMOKE=1 PROFILE=cpu-tiny MODEL_SRC=models/tiny-gpt-oss CONC="1 4" OUTPUT=32 ...
set -uo pipefail
phase=${1:?phase}
PROFILE=${PROFILE:-gpt-oss-120b-tp4}
source "$(dirname "$0")/gpu_common.sh"
CALL_S=${CALL_S:-570}  # each phase ends within this many seconds (the device allows 600 per call)
VPORT=${VPORT:-8011}
COMMON=(--profile "$PROFILE" --set "model=$MODEL" --set load_format=dummy)
if [ -n "${TP:-}" ]; then COMMON+=(--set "tensor_parallel_size=$TP"); fi
read -r -a CONCS <<< "${CONC:-1 16 64 128 256}"
SWEEP=(--concurrency "${CONCS[@]}" --prompt-tokens "${PROMPT:-1000}" --output-tokens "${OUTPUT:-1024}"
       --repeats "${REPEATS:-3}" --interleave --out "$LOGS/results" --log-dir "$LOGS" --no-report)

left_min() { awk "BEGIN { print ($CALL_S - ${1:-0} - $SECONDS) / 60 }"; }
# Results and logs stay on the machine between calls; every call returns all of them so far.
pack() { cp -r "$LOGS/results" "$OUT/" 2>/dev/null; tar czf "$OUT/logs-$phase.tgz" -C "$LOGS" . 2>/dev/null; }
trap pack EXIT

status=0
case $phase in
  install[1-4])
    bash .gpu/device_install.sh ".whl/b${phase#install}"
    ;;
  engine)
    if [ -z "${SMOKE:-}" ]; then install_last .whl/b5 || exit 1; fi
    setup
    nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv 2>/dev/null
    $PY -c "import sys, grpc, google.protobuf as pb, vllm, vllm.tokenizers.mistral, service.server, gateway.app, bench.runner
print('python', sys.version.split()[0], 'grpc', grpc.__version__, 'protobuf', pb.__version__, 'vllm', vllm.__version__)" || exit 1
    $PY -m bench tokenizer "$MODEL_SRC" .tmp/bench-models || exit 1
    $PY -m bench run --frontends engine "${COMMON[@]}" "${SWEEP[@]}" --max-minutes "$(left_min)" 2>&1 \
      | tee "$LOGS/run-engine.log" || status=1
    ;;
  grpc)
    setup
    $PY -m bench serve service "${COMMON[@]}" --port $PORT --log "$LOGS/service.log" --pidfile "$LOGS/service.pid" \
      --wait 420 || { tail -40 "$LOGS/service.log"; exit 1; }
    $PY -m bench run --frontends grpc --grpc-target 127.0.0.1:$PORT --service-pidfile "$LOGS/service.pid" --pyspy \
      "${COMMON[@]}" "${SWEEP[@]}" --max-minutes "$(left_min)" 2>&1 | tee "$LOGS/run-grpc.log" || status=1
    ;;
  gateway)
    setup
    $PY -m bench run --frontends gateway --grpc-target 127.0.0.1:$PORT --service-pidfile "$LOGS/service.pid" --pyspy \
      "${COMMON[@]}" "${SWEEP[@]}" --max-minutes "$(left_min 60)" 2>&1 | tee "$LOGS/run-gateway.log" || status=1
    $PY -m bench stop --pidfile "$LOGS/service.pid"
    nvidia-smi --query-gpu=memory.used --format=csv 2>/dev/null
    $PY -m bench serve vllm-serve "${COMMON[@]}" --port $VPORT --log "$LOGS/vllm-serve.log" --pidfile "$LOGS/vllm.pid" \
      --wait 0 || status=1
    ;;
  vllm)
    setup
    $PY -m bench run --frontends vllm-serve --vllm-url http://127.0.0.1:$VPORT --vllm-pidfile "$LOGS/vllm.pid" \
      --start-timeout 480 "${COMMON[@]}" "${SWEEP[@]}" --max-minutes "$(left_min)" 2>&1 | tee "$LOGS/run-vllm.log" \
      || status=1
    $PY -m bench stop --pidfile "$LOGS/vllm.pid"
    ;;
  interleave)
    # Order check: raw token-id and chat sweeps alternate on one fresh service (the main phases run
    # all token-id points first, then chat), so drift over time cannot pass for a chat cost.
    if [ -z "${SMOKE:-}" ] && [ -d .whl/b5 ]; then install_last .whl/b5 || exit 1; fi
    setup
    $PY -m bench serve service "${COMMON[@]}" --port $PORT --log "$LOGS/service-interleave.log" \
      --pidfile "$LOGS/service-interleave.pid" --wait 420 || { tail -40 "$LOGS/service-interleave.log"; exit 1; }
    # SWEEP has --interleave: per concurrency, each repeat runs a token-id point, then a chat point.
    $PY -m bench run --frontends grpc --workloads tokens chat --grpc-target 127.0.0.1:$PORT \
      --service-pidfile "$LOGS/service-interleave.pid" "${COMMON[@]}" "${SWEEP[@]}" --repeats "${ROUNDS:-3}" \
      --out "$LOGS/results/interleave" --max-minutes "$(left_min 20)" 2>&1 \
      | grep -- "->" | tee -a "$LOGS/run-interleave.log" || status=1
    $PY -m bench stop --pidfile "$LOGS/service-interleave.pid"
    ;;
  burst)
    # No GPU needed: our serving path's own cost for a 256-request burst (scripted engine), inline
    # Harmony rendering against render workers, on this machine's CPUs (bench/burst_probe.py).
    setup
    for workers in 0 4; do
      $PY -m bench.burst_probe --requests 256 --prompt-tokens "${PROMPT:-1000}" --repeats 5 \
        --set render_workers=$workers --json "$LOGS/results/burst-render_workers-$workers.json" 2>&1 \
        | grep -v Warning | tee -a "$LOGS/run-burst.log" || status=1
    done
    ;;
  *)
    echo "unknown phase $phase"; exit 2
    ;;
esac
exit $status
