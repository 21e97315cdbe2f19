"""What loading a tokenizer costs the engine's start: skip_tokenizer_init=True (before structured
output) vs the engine's grammar tokenizer (service/engine_tokenizer.py), alternating, in fresh
processes. Usage: python -m bench.tokenizer_start_cost --profile cpu-tiny --repeats 2
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from typing import Any

from service.config import Settings
from service.engine_tokenizer import tokenizer_dir

_CHILD = """
import asyncio, json, sys, time
from vllm.engine.arg_utils import AsyncEngineArgs
from vllm.v1.engine.async_llm import AsyncLLM
kwargs = json.loads(sys.argv[1])
started = time.monotonic()
llm = AsyncLLM.from_engine_args(AsyncEngineArgs(**kwargs))
print("START_S", time.monotonic() - started, flush=True)
llm.shutdown()
"""


def _start_seconds(kwargs: dict[str, Any]) -> float:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps(kwargs)], capture_output=True, text=True, check=True
    ).stdout
    return float(next(line for line in out.splitlines() if line.startswith("START_S")).split()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profile", default="cpu-tiny")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    from service.engine import engine_kwargs

    settings = Settings(profile=args.profile)
    base = engine_kwargs(settings)
    variants = {
        "skip_tokenizer_init": {**base, "skip_tokenizer_init": True},
        "grammar_tokenizer": {**base, "tokenizer": tokenizer_dir(settings)},
    }
    results: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name, kwargs in variants.items():
            results[name].append(_start_seconds(kwargs))
    print(
        json.dumps({"profile": args.profile, "when": time.strftime("%Y-%m-%d"), "start_s": results}, indent=2)
    )


if __name__ == "__main__":
    main()
