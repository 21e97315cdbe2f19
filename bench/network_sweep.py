"""How each network frontend is driven per workload (client processes speaking gRPC or HTTP), and the
sweep of one frontend over its workloads."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from bench.clients import ClientKind, ClientSpec
from bench.loadgen import ClientPool, Progress, Stream
from bench.profiled_point import profile_point
from bench.run_config import RunConfig
from bench.stats import RequestResult
from bench.sweep import PointRunner, Sweep
from bench.workload import WorkloadKind

# How each frontend is driven per workload; a missing entry means the frontend cannot do it
# (the gateway speaks chat only; the engine takes token ids, the same ones for both workloads).
CLIENTS: dict[str, dict[WorkloadKind, ClientKind | None]] = {
    "engine": {"tokens": None},
    "grpc": {"tokens": "grpc-raw", "chat": "grpc-chat"},
    "gateway": {"chat": "openai-chat"},
    "vllm-serve": {"tokens": "openai-completions", "chat": "openai-chat"},
    "smg": {"chat": "openai-chat"},
}
HOW = {
    (
        "engine",
        "tokens",
    ): "AsyncLLM in-process via service.engine.VllmEngine, token-id prompt (no network, no Harmony)",
    ("grpc", "tokens"): "gptoss.v1 Generate, raw mode: prompt_token_ids in, TokenIds events out",
    ("grpc", "chat"): "gptoss.v1 Generate, messages: Harmony rendered and parsed in the service",
    ("gateway", "chat"): "POST /v1/chat/completions (stream) to our gateway, which calls gRPC Generate",
    (
        "vllm-serve",
        "tokens",
    ): "POST /v1/completions (stream) with the token-id prompt; vLLM detokenizes the output",
    ("vllm-serve", "chat"): "POST /v1/chat/completions (stream): vLLM renders and parses Harmony",
    (
        "smg",
        "chat",
    ): "POST /v1/chat/completions (stream) to the SMG router (Rust Harmony) on vLLM's gRPC server",
}


def base_frontend(frontend: str) -> str:
    """vllm-serve-apiN is driven like vllm-serve."""
    return "vllm-serve" if frontend.startswith("vllm-serve-api") else frontend


def pool_runner(pool: ClientPool) -> PointRunner:
    async def run_point(
        streams: Sequence[Stream], limit_s: float, progress: Progress | None
    ) -> list[RequestResult]:
        return await asyncio.to_thread(pool.run, streams, limit_s, progress)

    return run_point


async def sweep_frontend(
    config: RunConfig,
    sweep: Sweep,
    frontend: str,
    target: str,
    cpu_pids: dict[str, int],
    profile_pids: dict[str, int],
) -> None:
    settings = config.settings()
    pools: dict[WorkloadKind, ClientPool] = {}
    try:
        for workload in config.workloads:
            kind = CLIENTS[base_frontend(frontend)].get(workload)
            if kind is None:
                continue
            spec = ClientSpec(
                kind, target, settings.model_id, config.temperature, config.point_timeout, frontend != "smg"
            )
            pools[workload] = pool = ClientPool(spec, config.client_procs)
            print(
                f"[{frontend}/{workload}] {HOW[(base_frontend(frontend), workload)]} ({pool.size} client processes)",
                flush=True,
            )
        if not pools:
            return
        warm_streams = max(pool.size for pool in pools.values())
        if config.interleave:
            runners = {workload: pool_runner(pool) for workload, pool in pools.items()}
            await sweep.run_interleaved(frontend, runners, cpu_pids, warm_streams)
        else:
            for workload, pool in pools.items():
                await sweep.run(frontend, workload, pool_runner(pool), cpu_pids, warm_streams)
        if config.pyspy and profile_pids:
            for workload, pool in pools.items():
                await profile_point(config, sweep, frontend, workload, pool, profile_pids)
    finally:
        for pool in pools.values():
            pool.close()
