# Shared prelude of the GPU session scripts (bench/gpu_session.sh, bench/gpu_first_burst.sh): the
# project root, the output and log folders, the model copy, and `setup` (device environment + paths).
# Source it after setting PROFILE's default; every value can be overridden from the environment.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
OUT=${OUT:-$ROOT/.tmp/gpu-out}
LOGS=$ROOT/.tmp/gpu-logs
mkdir -p "$OUT" "$LOGS/results"
PY=${PY:-python3}
MODEL_SRC=${MODEL_SRC:-.gpu/models/gpt-oss-120b}
MODEL=$ROOT/.tmp/bench-models/$(basename "$MODEL_SRC")
PORT=${PORT:-50051}
setup() {
  if [ -z "${SMOKE:-}" ]; then source .gpu/device_env.sh; fi
  export PYTHONPATH=$ROOT:$ROOT/clients/python/src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
}
