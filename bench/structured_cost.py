"""What structured output costs: output tok/s and TTFT with vs without a JSON schema, per stream count.

Starts the service in-process on a profile (CPU: cpu-tiny / cpu-tiny-random; GPU kit: gpt-oss-120b,
vLLM 0.26) and drives it through the gRPC stubs. Also reports the first-request cost of a new
schema (the service's xgrammar check + vLLM's grammar compile) against a repeated one, and
whether every constrained answer validated. Usage:

    python -m bench.structured_cost --profile cpu-tiny --streams 1 16 --out bench/results/x.json
    python -m bench.structured_cost --profile gpt-oss-120b --gpu      # 1, 16, 64, 256 streams
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import statistics
import time
from pathlib import Path
from typing import Any

import jsonschema
from gptoss.v1 import inference_pb2 as pb

from service.config import Settings
from service.engine_tokenizer import tokenizer_dir
from tests.support.scripted_engine import stub_for
from tests.support.server_thread import ServerThread
from tests.support.structured import NESTED_SCHEMA, json_schema_format, text_of

ASK = [pb.Message(role=pb.ROLE_USER, content="File a ticket for the broken printer, as JSON.")]


def _one(stub: Any, fmt: pb.ResponseFormat | None, max_tokens: int, seed: int) -> dict[str, Any]:
    request = pb.GenerateRequest(messages=ASK, max_tokens=max_tokens, temperature=1.0, seed=seed)
    if fmt is not None:
        request.response_format.CopyFrom(fmt)
        request.max_reasoning_tokens = 64
    started = time.monotonic()
    first: float | None = None
    responses = []
    for response in stub.Generate(request, timeout=600):
        if first is None and not response.HasField("done"):
            first = time.monotonic()
        responses.append(response)
    done = responses[-1].done
    valid = None
    if fmt is not None:
        try:
            jsonschema.validate(json.loads(text_of(responses, "content")), NESTED_SCHEMA)
            valid = True
        except (ValueError, jsonschema.ValidationError):
            valid = False
    return {
        "ttft_s": (first or time.monotonic()) - started,
        "total_s": time.monotonic() - started,
        "tokens": done.usage.completion_tokens,
        "valid": valid,
    }


def _point(
    stub: Any, streams: int, fmt: pb.ResponseFormat | None, per_stream: int, max_tokens: int
) -> dict[str, Any]:
    count = streams * per_stream
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(streams) as pool:
        rows = list(pool.map(lambda i: _one(stub, fmt, max_tokens, i), range(count)))
    wall = time.monotonic() - started
    tokens = sum(r["tokens"] for r in rows)
    return {
        "streams": streams,
        "schema": fmt is not None,
        "requests": count,
        "output_tok_s": tokens / wall,
        "ttft_p50_s": statistics.median(r["ttft_s"] for r in rows),
        "mean_tokens": tokens / count,
        "valid": None if fmt is None else sum(bool(r["valid"]) for r in rows),
    }


def _compile_cost(stub: Any) -> dict[str, float]:
    """A schema the engine has never seen, then the same one again (both caches warm)."""
    fresh = {**NESTED_SCHEMA, "description": f"fresh {time.time_ns()}"}
    fmt = json_schema_format(fresh)
    first = _one(stub, fmt, 8, 0)["total_s"]
    again = statistics.median(_one(stub, fmt, 8, 0)["total_s"] for _ in range(3))
    return {"first_request_s": first, "repeated_request_s": again}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--profile", default="cpu-tiny")
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--gpu", action="store_true", help="stream counts 1 16 64 256")
    parser.add_argument("--per-stream", type=int, default=2, help="requests per stream at each point")
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    streams = [1, 16, 64, 256] if args.gpu else args.streams
    settings = Settings(profile=args.profile, port=0, metrics_port=None)
    started = time.monotonic()
    tokenizer_dir(settings)  # the engine's tokenizer copy, written once, before the clock
    server = ServerThread(settings).start(ready_timeout=1800)
    result: dict[str, Any] = {"profile": args.profile, "server_start_s": time.monotonic() - started}
    channel, stub = stub_for(server)
    try:
        _one(stub, None, 4, 0)
        result["compile"] = _compile_cost(stub)
        fmt = json_schema_format(NESTED_SCHEMA)
        result["points"] = [
            _point(stub, n, f, args.per_stream, args.max_tokens) for n in streams for f in (None, fmt)
        ]
    finally:
        channel.close()
        server.stop()
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
