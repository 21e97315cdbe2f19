"""The engine frontend: vLLM's AsyncLLM in this process (no network, no Harmony), the ceiling the
serving paths are compared against."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

from bench.clients import EngineClient, Tally
from bench.loadgen import Progress, Stream, run_in_process, run_streams
from bench.recorder import Recorder
from bench.run_config import RunConfig
from bench.stats import RequestResult
from bench.sweep import Sweep
from bench.workload import Workload, engine_options


async def run_engine(config: RunConfig) -> None:
    from service.engine import VllmEngine

    deadline = time.monotonic() + config.max_seconds
    recorder = Recorder(config, "engine")
    settings = config.settings()
    started = time.monotonic()
    print(f"[engine] starting AsyncLLM in-process ({settings.model_id})", flush=True)
    engine = await VllmEngine.start(settings)
    recorder.data["servers"]["engine"] = {"start_s": round(time.monotonic() - started, 1)}
    tally = Tally()
    workload = Workload("tokens", config.prompt_tokens, config.output_tokens, config.temperature)
    client = EngineClient(engine, engine_options(settings, workload, config.output_tokens), tally)

    async def run_point(
        streams: Sequence[Stream], limit_s: float, progress: Progress | None
    ) -> list[RequestResult]:
        tally.done = tally.tokens = 0
        if progress is None:  # warm-up
            return await run_streams(client, streams, time.perf_counter(), limit_s, tally)
        return await run_in_process(client, streams, limit_s, progress, tally)

    try:
        sweep = Sweep(config, recorder, deadline)
        await sweep.run("engine", "tokens", run_point, {"engine (bench process)": os.getpid()})
    finally:
        recorder.save()
        await engine.shutdown()
