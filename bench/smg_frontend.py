"""The SMG anchor: vLLM's own gRPC server (SMG's worker protocol, same engine arguments) with the SMG
router in front, which renders and parses Harmony in Rust and speaks OpenAI HTTP. The strongest
non-Python frontend for gpt-oss; its serving CPU (router + the worker's AsyncLLM process) is the bar
for ours. SMG refuses `ignore_eos` for Harmony models, so its clients never send it: the output
length comes from the bench's shaping logits processor (bench.shaped_output) on every side.
"""

from __future__ import annotations

import time

from bench import servers
from bench.network_sweep import sweep_frontend
from bench.recorder import Recorder
from bench.run_config import RunConfig
from bench.sweep import Sweep
from service.probes import free_port


async def run_smg(config: RunConfig) -> None:
    recorder = Recorder(config, "smg")
    sweep = Sweep(config, recorder, time.monotonic() + config.max_seconds)
    started: list[servers.Server] = []
    try:
        settings = config.settings()
        worker_port, port = free_port(), free_port()
        worker = servers.start_vllm_grpc(settings, worker_port, config.log_dir / "vllm-grpc.log")
        started.append(worker)
        print(f"[smg] vLLM gRPC server starting on :{worker_port} (log {worker.log_path})", flush=True)
        took = servers.wait_grpc_ready(
            worker, f"127.0.0.1:{worker_port}", min(config.start_timeout, sweep.remaining()), service=""
        )
        router = servers.start_smg(settings.model, worker_port, port, config.log_dir / "smg.log")
        started.append(router)
        url = f"http://127.0.0.1:{port}"
        took_router = servers.wait_http_ready(router, url + "/v1/models", min(120.0, sweep.remaining()))
        recorder.data["servers"]["smg"] = {
            "start_s": round(took + took_router, 1),
            "argv": [*worker.argv[1:], "|", *router.argv[1:]],
        }
        print(f"[smg] ready after {took:.0f}s (worker) + {took_router:.0f}s (router)", flush=True)
        pids = {"smg": router.pid, "vllm-grpc": worker.pid}
        await sweep_frontend(config, sweep, "smg", url, pids, pids)
    finally:
        recorder.save()
        for server in reversed(started):
            server.stop()
