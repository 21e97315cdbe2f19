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

from bench import engine_profile, set_args
from service.config import Settings
from service.engine_tokenizer import tokenizer_dir
from tests.support.scripted_engine import stub_for
from tests.support.server_thread import ServerThread
from tests.support.structured import NESTED_SCHEMA, json_schema_format, text_of

ASK = [pb.Message(role=pb.ROLE_USER, content="File a ticket for the broken printer, as JSON.")]


# One long string: random weights rarely close it, so requests run to max_tokens, with or without
# the grammar (unbounded: a maxLength of 100000 compiles to a repetition that costs ~3 ms a step); with the same prompt (strict=False renders the schema, constrains nothing)
# the two arms differ only in the grammar's per-step cost.
LONG_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"text": {"type": "string"}},
    "required": ["text"],
}
ARMS: dict[str, tuple[pb.ResponseFormat | None, dict[str, Any] | None]] = {
    "free": (None, None),  # no format at all
    "long-rendered": (json_schema_format(LONG_SCHEMA, "note", strict=False), None),
    "long-enforced": (json_schema_format(LONG_SCHEMA, "note"), None),
    "nested": (json_schema_format(NESTED_SCHEMA), NESTED_SCHEMA),  # short answers, all validated
}


def _one(
    stub: Any, fmt: pb.ResponseFormat | None, max_tokens: int, seed: int, schema: dict[str, Any] | None = None
) -> dict[str, Any]:
    request = pb.GenerateRequest(messages=ASK, max_tokens=max_tokens, temperature=1.0, seed=seed)
    if fmt is not None:
        request.response_format.CopyFrom(fmt)
        if fmt.json_schema.strict:
            request.max_reasoning_tokens = 64
    responses = list(stub.Generate(request, timeout=600))
    done = responses[-1].done
    valid = None
    if schema is not None:
        try:
            jsonschema.validate(json.loads(text_of(responses, "content")), schema)
            valid = True
        except (ValueError, jsonschema.ValidationError):
            valid = False
    return {
        # The server's clock: random weights without a schema stream no event before Done.
        "ttft_s": done.timings.time_to_first_token.ToTimedelta().total_seconds(),
        "decode_s": done.timings.decode_time.ToTimedelta().total_seconds(),
        "total_s": done.timings.total.ToTimedelta().total_seconds(),
        "tokens": done.usage.completion_tokens,
        "valid": valid,
    }


def _point(
    stub: Any, streams: int, arm: str, per_stream: int, max_tokens: int, profile_dir: Path | None = None
) -> dict[str, Any]:
    fmt, schema = ARMS[arm]
    count = streams * per_stream
    started = time.monotonic()
    with (
        engine_profile.recording(profile_dir, f"{streams}-{arm}"),
        concurrent.futures.ThreadPoolExecutor(streams) as pool,
    ):
        rows = list(pool.map(lambda i: _one(stub, fmt, max_tokens, i, schema), range(count)))
    wall = time.monotonic() - started
    tokens = sum(r["tokens"] for r in rows)
    return {
        "streams": streams,
        "arm": arm,
        "requests": count,
        "output_tok_s": tokens / wall,
        "ttft_p50_s": statistics.median(r["ttft_s"] for r in rows),
        # Per-stream decode speed after the first token: the grammar's per-step cost, whatever the
        # answer's length (a bounded JSON answer is shorter than max_tokens of free text).
        "decode_tok_s_per_stream_p50": statistics.median(
            (r["tokens"] - 1) / r["decode_s"] for r in rows if r["tokens"] > 1 and r["decode_s"] > 0
        ),
        "mean_tokens": tokens / count,
        "valid": None if schema is None else sum(bool(r["valid"]) for r in rows),
    }


def _compile_cost(stub: Any) -> dict[str, float]:
    """A schema the engine has never seen, then the same one again (both caches warm)."""
    fresh = {**NESTED_SCHEMA, "description": f"fresh {time.time_ns()}"}
    fmt = json_schema_format(fresh)
    first = _one(stub, fmt, 8, 0)["total_s"]
    again = statistics.median(_one(stub, fmt, 8, seed)["total_s"] for seed in range(3))
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
    parser.add_argument("--arms", nargs="+", choices=sorted(ARMS), default=list(ARMS))
    parser.add_argument("--out", type=Path)
    parser.add_argument("--engine-profile", type=Path, help="py-spy the engine core per point, into DIR")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="a setting (JSON value)"
    )
    args = parser.parse_args(argv)
    streams = [1, 16, 64, 256] if args.gpu else args.streams
    settings = Settings(profile=args.profile, port=0, metrics_port=None, **set_args.overrides(args.set))
    started = time.monotonic()
    tokenizer_dir(settings)  # the engine's tokenizer copy, written once, before the clock
    server = ServerThread(settings).start(ready_timeout=1800)
    result: dict[str, Any] = {"profile": args.profile, "server_start_s": time.monotonic() - started}
    channel, stub = stub_for(server)
    try:
        _one(stub, None, 4, 0)
        result["compile"] = _compile_cost(stub)
        result["points"] = [
            _point(stub, n, arm, args.per_stream, args.max_tokens, args.engine_profile)
            for n in streams
            for arm in args.arms
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
