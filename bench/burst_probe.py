"""The serving path's own cost for a burst: N Generate calls sent at once to a service whose engine
answers instantly (the scripted test double), so every millisecond measured is ours, not vLLM's.

Why: with a real engine, a burst's TTFT mixes prefill with our per-request work (gRPC receive,
validation, Harmony render, engine submit), which runs one request after another on one event
loop. This probe isolates that serial part, for token-id and chat prompts, and shows what a
setting such as `render_workers` changes.

    python -m bench.burst_probe --requests 256 --prompt-tokens 1000 --set render_workers=0
    python -m bench.burst_probe --requests 256 --prompt-tokens 1000 --set render_workers=4

The client runs in its own process (as in production) and prints per-workload p50/p99/max of
send → first event, and the whole burst's span.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
import time
from pathlib import Path
from typing import Any


def _client(target: str, requests: int, kind: str, prompt_text: str, token_ids: list[int], model: str) -> Any:
    """Runs in a child process: one burst, returns per-request first-event latencies (ms)."""
    import grpc.aio
    from gptoss.v1 import inference_pb2 as pb
    from gptoss.v1 import inference_pb2_grpc as pb_grpc

    async def burst() -> dict[str, Any]:
        async with grpc.aio.insecure_channel(target) as channel:
            stub = pb_grpc.InferenceServiceStub(channel)
            await channel.channel_ready()

            def request() -> pb.GenerateRequest:
                if kind == "tokens":
                    return pb.GenerateRequest(
                        prompt_token_ids=token_ids, max_tokens=2, ignore_eos=True, model=model
                    )
                message = pb.Message(role=pb.ROLE_USER, content=prompt_text)
                return pb.GenerateRequest(messages=[message], max_tokens=2, ignore_eos=True, model=model)

            async def one() -> float:
                started = time.perf_counter()
                first = 0.0
                async for _ in stub.Generate(request()):
                    first = first or time.perf_counter()
                return (first - started) * 1000

            await asyncio.gather(*(one() for _ in range(8)))  # warm-up: connection, caches
            started = time.perf_counter()
            latencies = await asyncio.gather(*(one() for _ in range(requests)))
            return {"latencies_ms": latencies, "burst_ms": (time.perf_counter() - started) * 1000}

    return asyncio.run(burst())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=256)
    parser.add_argument("--prompt-tokens", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workloads", nargs="+", default=["tokens", "chat"], choices=["tokens", "chat"])
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a Settings field")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    from bench.inprocess import InProcessService, InstantEngine, instant_factory
    from bench.stats import percentile
    from bench.workload import PromptFactory
    from service.config import Settings

    overrides = {"max_concurrent_requests": "4096", **dict(item.split("=", 1) for item in args.set)}
    settings = Settings(profile="cpu-tiny", port=0, metrics_port=None, **overrides)
    prompt = PromptFactory(settings, args.prompt_tokens, unique=False).prompt(0)
    server = InProcessService(settings, instant_factory(InstantEngine([[1], [2]]))).start(ready_timeout=60)
    context = multiprocessing.get_context("spawn")
    results: dict[str, Any] = {
        "settings": overrides,
        "requests": args.requests,
        "prompt_tokens": len(prompt.token_ids),
    }
    try:
        with context.Pool(1) as pool:
            for kind in args.workloads:
                runs = [
                    pool.apply(
                        _client,
                        (
                            server.target,
                            args.requests,
                            kind,
                            prompt.text,
                            list(prompt.token_ids),
                            settings.model_id,
                        ),
                    )
                    for _ in range(args.repeats)
                ]
                latencies = [x for run in runs for x in run["latencies_ms"]]
                results[kind] = {
                    "first_event_p50_ms": round(percentile(latencies, 50), 2),
                    "first_event_p99_ms": round(percentile(latencies, 99), 2),
                    "first_event_max_ms": round(max(latencies), 2),
                    "burst_ms_median": round(statistics.median(run["burst_ms"] for run in runs), 2),
                }
                print(kind, json.dumps(results[kind]), flush=True)
    finally:
        server.stop()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
