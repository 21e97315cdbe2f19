#!/usr/bin/env bash
# Issue 13's GPU rows: grammar overhead (bench/structured_cost.py) on gpt-oss-120b shapes, dummy MXFP4
# weights, TP=1, profile gpt-oss-120b, in one run on one machine, as back-to-back device calls:
#   install1..install5   carry .whl/bN and .gpu (vLLM 0.26 kit + our wheels; b5 also holds SQLAlchemy,
#                        aiosqlite, alembic for the gateway)
#   structured           carry .gpu: tokenizer, then structured_cost starts the service (a process) and
#                        sweeps 1/16/64/256 streams with and without the nested schema. FILL=N sets
#                        grammar_parallel_fill_above (null: vLLM's own fill); PROBE=1 first times the
#                        bitmask fills on the host's CPU (bench/bitmask_fill_threads.py); SPY=1 records
#                        the engine core with py-spy during each point (bench/engine_profile.py)
# Returns $OUT/results/structured-1xH200.json and the log.
# CPU dry run: SMOKE=1 PROFILE=cpu-tiny-random MODEL_SRC=models/tiny-gpt-oss STREAMS="1 4" PY=.venv/bin/python
set -uo pipefail
phase=${1:?phase}
PROFILE=${PROFILE:-gpt-oss-120b}
source "$(dirname "$0")/gpu_common.sh"
read -r -a STREAM_COUNTS <<< "${STREAMS:-1 16 64 256}"
pack() {  # at most 8 files come back: each py-spy folder as one tarball
  mkdir -p "$OUT/results"
  cp "$LOGS"/results/*.json* "$OUT/results/" 2>/dev/null
  for dir in "$LOGS"/results/engine-profile-*/; do
    [ -d "$dir" ] && tar czf "$OUT/results/$(basename "$dir").tgz" -C "$LOGS/results" "$(basename "$dir")"
  done
  cp "$LOGS"/*.log "$OUT/" 2>/dev/null
}
trap pack EXIT
case $phase in
  install[1-4]) bash .gpu/device_install.sh ".whl/b${phase#install}" ;;
  install5) install_last .whl/b5 ;;
  structured)
    setup
    nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv 2>/dev/null
    $PY -m bench tokenizer "$MODEL_SRC" .tmp/bench-models || exit 1
    if [ -n "${PROBE:-}" ]; then
      for n in 16 64 256; do
        $PY -m bench.bitmask_fill_threads --matchers $n --workers 4 8 --batch 4 2>&1 | tail -1 | tee -a "$LOGS/results/fill-threads.jsonl"
      done
    fi
    $PY -m bench.structured_cost ${FILL:+--set grammar_parallel_fill_above=$FILL} --profile "$PROFILE" --set "model=$MODEL" --set load_format=dummy \
      --set tensor_parallel_size=1 --streams "${STREAM_COUNTS[@]}" --per-stream "${PER_STREAM:-2}" \
      --max-tokens "${MAX_TOKENS:-256}" ${REPEATS:+--repeats $REPEATS} ${MAX_REQUESTS:+--max-requests $MAX_REQUESTS} ${ARMS:+--arms $ARMS} ${SPY:+--engine-profile $LOGS/results/engine-profile-${TAG:-1xH200}} --log "$LOGS/service.log" --out "$LOGS/results/structured-${TAG:-1xH200}.json" > "$LOGS/structured-full.log" 2>&1
    rc=$?
    grep -a "structured output:" "$LOGS/service.log" | head -6  # our engine-side installs, where they ran
    grep -a "JIT compilation during inference" "$LOGS/service.log" | cut -c1-160
    grep -v "^(EngineCore\|^(Worker" "$LOGS/structured-full.log" | tail -40
    grep -a "Error\|Traceback\|^(EngineCore.*File\|raise " "$LOGS/structured-full.log" "$LOGS/service.log" | head -60
    exit $rc
    ;;
  *) echo "unknown phase $phase"; exit 2 ;;
esac
