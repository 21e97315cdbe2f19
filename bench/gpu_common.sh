# Shared prelude of the GPU session scripts (bench/gpu_session.sh, gpu_first_burst.sh, gpu_anchors.sh,
# gpu_structured.sh): the project root, the output and log folders, the model copy, `setup` (device
# environment + paths), `wait_service` (a service started detached, until SERVING) and `install_last`
# (the last wheel chunk, after checking that the earlier ones are all there).
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
wait_service() {  # $1 pidfile, $2 log, $3 seconds: until SERVING; at once (log tail) if the process is gone
  $PY - "$PORT" "${3:-480}" "$1" <<'PYEOF' || { tail -40 "$2"; exit 1; }
import sys, time
from pathlib import Path
from service.probes import grpc_serving
target, limit, t = f"127.0.0.1:{sys.argv[1]}", float(sys.argv[2]), time.time()
pid = int(Path(sys.argv[3]).read_text().split()[0])
while not grpc_serving(target) and time.time() - t < limit:
    if not Path(f"/proc/{pid}").exists():
        sys.exit(f"service process {pid} exited before SERVING")
    time.sleep(2)
ready = grpc_serving(target)
print(f"service ready after waiting {time.time() - t:.0f}s" if ready else "service NOT ready", flush=True)
sys.exit(0 if ready else 1)
PYEOF
}
install_last() {  # $1 the folder with LAST and EXPECT: check that no earlier chunk was lost, then install
  local sum wheel got
  read -r sum wheel < "$1/EXPECT"
  got=$(ls -1 "$HOME/.vllm-wheels/$wheel".part* "$1/$wheel".part* 2>/dev/null | awk -F/ '{print $NF" "$0}' \
        | sort | cut -d' ' -f2 | xargs -r cat | sha256sum | cut -d' ' -f1)
  if [ "$got" != "$sum" ]; then
    echo "the vLLM wheel's parts are incomplete ($(ls "$HOME/.vllm-wheels" 2>/dev/null | wc -l) files in" \
         "~/.vllm-wheels; expected: $(sed -n 2p "$1/EXPECT")): the machine was given back, run install1.. again"
    return 1
  fi
  bash .gpu/device_install.sh "$1"
}
