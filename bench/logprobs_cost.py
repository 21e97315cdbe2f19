"""The per-token cost of logprobs: tok/s at N concurrent chat streams, without and with logprobs.

Usage: python -m bench.logprobs_cost [--streams 16] [--tokens 128] [--rounds 3] [--out FILE]

One in-process service on the real vLLM engine of `--profile` (default cpu-tiny); chat requests
with ignore_eos so every stream generates exactly `--tokens` tokens through the Harmony parser.
Settings alternate round by round (off, top_logprobs=0, top_logprobs=5) so load drift on a
shared machine spreads over all of them; the report is each setting's median.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Any

from gptoss import AsyncClient

from bench.inprocess import InProcessService
from service.config import Settings

SETTINGS: dict[str, dict[str, Any]] = {
    "off": {},
    "logprobs": {"logprobs": True},
    "top_logprobs=5": {"logprobs": True, "top_logprobs": 5},
}


async def _round(target: str, streams: int, tokens: int, extra: dict[str, Any]) -> float:
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

        started = time.perf_counter()
        produced = sum(await asyncio.gather(*(one(i) for i in range(streams))))
        return produced / (time.perf_counter() - started)


async def _measure(target: str, args: argparse.Namespace) -> dict[str, list[float]]:
    await _round(target, args.streams, 16, {})  # warm-up
    results: dict[str, list[float]] = {name: [] for name in SETTINGS}
    for _ in range(args.rounds):
        for name, extra in SETTINGS.items():
            results[name].append(await _round(target, args.streams, args.tokens, extra))
    return results


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
        "tok_per_s_median": {name: round(statistics.median(v), 1) for name, v in results.items()},
        "tok_per_s_all": {name: [round(x, 1) for x in v] for name, v in results.items()},
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as out:
            out.write(text + "\n")


if __name__ == "__main__":
    main()
