"""The per-token cost of logprobs: tok/s at N concurrent chat streams, without and with logprobs.

Usage: python -m bench.logprobs_cost [--streams 16] [--tokens 128] [--rounds 3] [--out FILE]

One in-process service on the real vLLM engine of `--profile` (default cpu-tiny); chat requests
with ignore_eos so every stream generates exactly `--tokens` tokens through the Harmony parser.
Settings alternate round by round (off, top_logprobs=0, top_logprobs=5) so load drift on a
shared machine spreads over all of them; the report is each setting's median. Wall tok/s on a
shared machine is noisy, so the CPU time per 1000 tokens is reported too, for this process
(service, gRPC, the client's decoding) and for the engine-core processes: it measures the work.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from typing import Any

import psutil
from gptoss import AsyncClient

from bench.inprocess import InProcessService
from bench.procstat import cpu_seconds
from service.config import Settings

SETTINGS: dict[str, dict[str, Any]] = {
    "off": {},
    "logprobs": {"logprobs": True},
    "top_logprobs=5": {"logprobs": True, "top_logprobs": 5},
}


def _cpu() -> tuple[float, float]:
    """CPU seconds of this process and of its (engine-core) children."""
    children = psutil.Process().children(recursive=True)
    return cpu_seconds(os.getpid()) or 0.0, sum(cpu_seconds(c.pid) or 0.0 for c in children)


async def _round(target: str, streams: int, tokens: int, extra: dict[str, Any]) -> tuple[float, float, float]:
    """tok/s, and CPU ms per 1000 tokens of this process and of the engine."""
    async with AsyncClient(target) as client:

        async def one(i: int) -> int:
            done = await client.complete(
                messages=[{"role": "user", "content": f"Tell me a story, number {i}."}],
                max_tokens=tokens,
                ignore_eos=True,
                temperature=1.0,
                **extra,
            )
            return done.usage.completion_tokens

        started, (own0, engine0) = time.perf_counter(), _cpu()
        produced = sum(await asyncio.gather(*(one(i) for i in range(streams))))
        elapsed, (own1, engine1) = time.perf_counter() - started, _cpu()
        per_k = 1e6 / produced
        return produced / elapsed, (own1 - own0) * per_k, (engine1 - engine0) * per_k


async def _measure(target: str, args: argparse.Namespace) -> dict[str, list[tuple[float, float, float]]]:
    await _round(target, args.streams, 16, {})  # warm-up
    results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in SETTINGS}
    for _ in range(args.rounds):
        for name, extra in SETTINGS.items():
            results[name].append(await _round(target, args.streams, args.tokens, extra))
    return results


def _median(values: list[tuple[float, float, float]], column: int) -> float:
    return round(statistics.median(v[column] for v in values), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="cpu-tiny")
    parser.add_argument("--streams", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    service = InProcessService(Settings(profile=args.profile, port=0, metrics_port=None)).start()
    try:
        results = asyncio.run(_measure(service.target, args))
    finally:
        service.stop()
    report = {
        "profile": args.profile,
        "streams": args.streams,
        "tokens_per_stream": args.tokens,
        "rounds": args.rounds,
        "tok_per_s_median": {name: _median(v, 0) for name, v in results.items()},
        "service_cpu_ms_per_1k_tokens_median": {name: _median(v, 1) for name, v in results.items()},
        "engine_cpu_ms_per_1k_tokens_median": {name: _median(v, 2) for name, v in results.items()},
        "tok_per_s_all": {name: [round(x[0], 1) for x in v] for name, v in results.items()},
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as out:
            out.write(text + "\n")


if __name__ == "__main__":
    main()
