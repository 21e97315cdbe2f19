"""What structured output costs: output tok/s and TTFT with vs without a JSON schema, per stream count.

Starts the service (`python -m service`, its own process: the client threads must not share its
GIL) on a profile (CPU: cpu-tiny / cpu-tiny-random; GPU kit: gpt-oss-120b, vLLM 0.26) and drives it
through the gRPC stubs. Also reports the first-request cost of a new
schema (the service's xgrammar check + vLLM's grammar compile) against a repeated one, and
whether every constrained answer validated. Usage:

    python -m bench.structured_cost --profile cpu-tiny --streams 1 16 --out bench/results/x.json
    python -m bench.structured_cost --profile gpt-oss-120b --gpu      # 1, 16, 64, 256 streams
    python -m bench.structured_cost --arms long-enforced long-matched --repeats 3 ...

The grammar's own cost is `long-enforced` against `long-matched`: the same rendered prompt, no
grammar, and each request's max_tokens set to the length its enforced twin answered with. Without
that match the constrained answers are shorter and of uneven length, so the enforced arm also pays
for more prefill per output token and for a ragged tail of streams, which is the workload, not the
grammar. No request carries a seed: vLLM samples seeded requests one by one (a per-request
generator each step), which real traffic rarely asks for and which would pad every arm's step.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import statistics
import time
from pathlib import Path
from typing import Any

import grpc
import jsonschema
from gptoss.v1 import inference_pb2 as pb
from gptoss.v1 import inference_pb2_grpc

from bench import engine_profile, set_args
from bench.servers import start_service, wait_grpc_ready
from service.config import Settings
from service.engine_tokenizer import tokenizer_dir
from service.probes import free_port
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
    # Rendered like long-rendered, each request as long as its long-enforced twin (run that first).
    "long-matched": (json_schema_format(LONG_SCHEMA, "note", strict=False), None),
    "nested": (json_schema_format(NESTED_SCHEMA), NESTED_SCHEMA),  # short answers, all validated
}


MATCHED_TO = {"long-matched": "long-enforced"}


def _one(
    stub: Any, fmt: pb.ResponseFormat | None, max_tokens: int, schema: dict[str, Any] | None = None
) -> dict[str, Any]:
    request = pb.GenerateRequest(messages=ASK, max_tokens=max_tokens, temperature=1.0)
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
    stub: Any,
    streams: int,
    arm: str,
    lengths: list[int],
    profile_dir: Path | None = None,
    repeat: int = 1,
) -> tuple[dict[str, Any], list[int]]:
    """One point: len(lengths) requests over `streams` threads, request i capped at lengths[i].
    Returns the row and each request's output length (in submission order)."""
    fmt, schema = ARMS[arm]
    count = len(lengths)
    started = time.monotonic()
    with (
        engine_profile.recording(profile_dir, f"{streams}-{arm}" + (f"-r{repeat}" if repeat > 1 else "")),
        concurrent.futures.ThreadPoolExecutor(streams) as pool,
    ):
        rows = list(pool.map(lambda i: _one(stub, fmt, lengths[i], schema), range(count)))
    wall = time.monotonic() - started
    tokens = sum(r["tokens"] for r in rows)
    return {
        "streams": streams,
        "arm": arm,
        "repeat": repeat,
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
    }, [r["tokens"] for r in rows]


def sweep(
    stub: Any,
    streams: list[int],
    arms: list[str],
    per_stream: int,
    max_tokens: int,
    repeats: int = 1,
    profile_dir: Path | None = None,
    max_requests: int | None = None,
) -> list[dict[str, Any]]:
    """Every arm at every stream count, the arm list `repeats` times over (interleaved); a point
    sends streams x per_stream requests, at most `max_requests` (but at least one per stream)."""
    points: list[dict[str, Any]] = []
    for n in streams:
        count = max(n, min(n * per_stream, max_requests or n * per_stream))
        for repeat in range(1, repeats + 1):
            answered: dict[str, list[int]] = {}
            for arm in arms:
                twin = MATCHED_TO.get(arm)
                lengths = [max(1, length) for length in answered[twin]] if twin else [max_tokens] * count
                point, answered[arm] = _point(stub, n, arm, lengths, profile_dir, repeat)
                if twin:
                    point["mean_tokens_twin"] = sum(lengths) / len(lengths)
                points.append(point)
    return points


def costs(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per stream count, the enforced arm against the matched and the rendered one: the median over
    repeats of enforced / other - 1 (negative: the grammar is slower) for each metric."""
    metrics = ("decode_tok_s_per_stream_p50", "output_tok_s")
    by = {(p["streams"], p["arm"], p["repeat"]): p for p in points}
    rows: list[dict[str, Any]] = []
    for n in sorted({p["streams"] for p in points}):
        row: dict[str, Any] = {"streams": n}
        repeats = sorted({r for s, a, r in by if s == n and a == "long-enforced"})
        for other in ("long-matched", "long-rendered"):
            pairs = [(by[n, "long-enforced", r], by[n, other, r]) for r in repeats if (n, other, r) in by]
            for metric in metrics:
                if pairs:
                    row[f"{metric}_vs_{other}"] = statistics.median(
                        e[metric] / o[metric] - 1 for e, o in pairs
                    )
        rows.append(row)
    return rows


def _compile_cost(stub: Any) -> dict[str, float]:
    """A schema the engine has never seen, then the same one again (both caches warm)."""
    fresh = {**NESTED_SCHEMA, "description": f"fresh {time.time_ns()}"}
    fmt = json_schema_format(fresh)
    first = _one(stub, fmt, 8)["total_s"]
    again = statistics.median(_one(stub, fmt, 8)["total_s"] for _ in range(3))
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
    parser.add_argument(
        "--repeats", type=int, default=1, help="the arm list this many times per stream count"
    )
    parser.add_argument(
        "--max-requests", type=int, help="cap on a point's requests (at least one per stream)"
    )
    parser.add_argument("--out", type=Path)
    parser.add_argument("--engine-profile", type=Path, help="py-spy the engine core per point, into DIR")
    parser.add_argument(
        "--log", type=Path, default=Path(".tmp/structured-cost-service.log"), help="the service's log"
    )
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="a setting (JSON value)"
    )
    args = parser.parse_args(argv)
    for arm, twin in MATCHED_TO.items():
        if arm in args.arms and (twin not in args.arms or args.arms.index(twin) > args.arms.index(arm)):
            parser.error(f"--arms: {arm} takes its lengths from {twin}, which must come before it")
    streams = [1, 16, 64, 256] if args.gpu else args.streams
    overrides = {"metrics_port": free_port(), **set_args.overrides(args.set)}
    settings = Settings(profile=args.profile, **overrides)
    tokenizer_dir(settings)  # the engine's tokenizer copy, written once, before the clock
    port = free_port()
    server = start_service(args.profile, overrides, port, args.log)
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        start_s = wait_grpc_ready(server, f"127.0.0.1:{port}", timeout=1800)
        result: dict[str, Any] = {"profile": args.profile, "server_start_s": start_s}
        stub = inference_pb2_grpc.InferenceServiceStub(channel)
        _one(stub, None, 4)
        result["compile"] = _compile_cost(stub)
        result["points"] = sweep(
            stub,
            streams,
            args.arms,
            args.per_stream,
            args.max_tokens,
            args.repeats,
            args.engine_profile,
            args.max_requests,
        )
        result["costs"] = costs(result["points"])
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
