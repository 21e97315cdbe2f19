"""Gateway overhead against direct gRPC: the same requests through the OpenAI SDK + gateway and through
the generated stub, one at a time, on one service. Prints latencies and the gateway/direct ratio.

    python -m bench.gateway_overhead                    # real vLLM CPU engine (cpu-tiny), one run
    python -m bench.gateway_overhead --engine scripted  # scripted engine: isolates per-event overhead
    python -m bench.gateway_overhead --target 127.0.0.1:50051 --model gpt-oss-tiny  # a running service

The gateway runs as its own process (`python -m gateway`, uvloop), as in production.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import httpx
import openai
from gptoss.v1 import inference_pb2 as pb
from gptoss.v1 import inference_pb2_grpc as pb_grpc

from bench import servers
from bench.inprocess import InProcessService, InstantEngine, instant_factory
from service.config import Settings
from service.probes import free_port

PROMPT = "Write a short poem about the sea."
LOGS = Path(".tmp") / "bench-logs"


def _start_service(engine: str, tokens: int) -> InProcessService:
    settings = Settings(profile="cpu-tiny", port=0, metrics_port=None)
    if engine == "vllm":
        return InProcessService(settings).start()
    from service.harmony import tokens as tk

    piece = list(tk.encoding().encode(" wave", allowed_special="all"))
    head = list(tk.encoding().encode("<|channel|>final<|message|>", allowed_special="all"))
    factory = instant_factory(InstantEngine([head, *([piece] * tokens)]))
    return InProcessService(settings, factory).start(ready_timeout=30)


def _start_gateway(target: str) -> tuple[servers.Server, str]:
    port = free_port()
    gateway = servers.start_gateway(target, port, LOGS / "gateway-overhead.log")
    url = f"http://127.0.0.1:{port}"
    servers.wait_http_ready(gateway, url + "/ready", 30)
    return gateway, url


def _direct(stub: Any, model: str, max_tokens: int) -> Callable[[], tuple[float, float, int]]:
    request = pb.GenerateRequest(
        messages=[pb.Message(role=pb.ROLE_USER, content=PROMPT)],
        max_tokens=max_tokens,
        temperature=0.0,
        model=model,
    )

    def run() -> tuple[float, float, int]:
        start = time.perf_counter()
        first = 0.0
        tokens = 0
        for event in stub.Generate(request, timeout=600):
            first = first or time.perf_counter() - start
            if event.HasField("done"):
                tokens = event.done.usage.completion_tokens
        return first, time.perf_counter() - start, tokens

    return run


def _gateway(client: openai.OpenAI, model: str, max_tokens: int) -> Callable[[], tuple[float, float, int]]:
    def run() -> tuple[float, float, int]:
        start = time.perf_counter()
        first = 0.0
        tokens = 0
        stream = client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": PROMPT}],
            max_tokens=max_tokens,
            temperature=0.0,
            stream=True,
            stream_options={"include_usage": True},
        )
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.role is None:
                first = first or time.perf_counter() - start  # first generated event, not the role chunk
            if chunk.usage is not None:
                tokens = chunk.usage.completion_tokens
        return first or time.perf_counter() - start, time.perf_counter() - start, tokens

    return run


def _gateway_raw(url: str, model: str, max_tokens: int) -> Callable[[], tuple[float, float, int]]:
    """The gateway without the SDK's per-chunk parsing: what the gateway itself costs."""
    http = httpx.Client(base_url=url, timeout=600)
    body = {
        "model": model,
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": max_tokens,
        "temperature": 0.0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }

    def run() -> tuple[float, float, int]:
        start = time.perf_counter()
        first = 0.0
        tokens = 0
        with http.stream("POST", "/v1/chat/completions", json=body) as response:
            for i, line in enumerate(response.iter_lines()):
                if i > 1 and line.startswith("data: {"):
                    first = first or time.perf_counter() - start
                if line.startswith('data: {"id"') and '"usage":{' in line:
                    tokens = json.loads(line[6:])["usage"]["completion_tokens"]
        return first or time.perf_counter() - start, time.perf_counter() - start, tokens

    return run


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--engine", choices=["vllm", "scripted"], default="vllm")
    parser.add_argument("--target", help="use a running service instead of starting one")
    parser.add_argument("--model", default="", help="model id (default: the service's)")
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--max-tokens", type=int, default=128)
    args = parser.parse_args()

    service = None if args.target else _start_service(args.engine, args.max_tokens)
    target = args.target if service is None else service.target
    gateway, url = _start_gateway(target)
    try:
        channel = grpc.insecure_channel(target)
        stub = pb_grpc.InferenceServiceStub(channel)
        model = args.model or stub.GetModelInfo(pb.GetModelInfoRequest()).model_id
        client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=600)
        runs = {
            "direct gRPC": _direct(stub, model, args.max_tokens),
            "gateway httpx": _gateway_raw(url, model, args.max_tokens),
            "gateway SDK": _gateway(client, model, args.max_tokens),
        }
        results: dict[str, list[tuple[float, float, int]]] = {name: [] for name in runs}
        for run in runs.values():  # warm-up: connections, prefix cache
            run()
            run()
        for i in range(args.requests):  # interleaved so drift hits every side alike
            order = list(runs.items())
            for name, run in order if i % 2 == 0 else reversed(order):
                results[name].append(run())
        print(
            f"engine={args.engine if not args.target else 'external'} requests={args.requests} "
            f"max_tokens={args.max_tokens} (sequential, streaming, median of runs)"
        )
        medians = {}
        for name, rows in results.items():
            first = statistics.median(r[0] for r in rows)
            total = statistics.median(r[1] for r in rows)
            tokens = statistics.median(r[2] for r in rows)
            medians[name] = total
            print(
                f"  {name:14s} first event {first * 1000:8.1f} ms   total {total * 1000:8.1f} ms   tokens {tokens:.0f}"
            )
        direct = medians["direct gRPC"]
        for name in ("gateway httpx", "gateway SDK"):
            via = medians[name]
            print(
                f"  {name}/direct latency ratio: {via / direct:.3f}  (+{(via - direct) * 1000:.1f} ms per request)"
            )
        channel.close()
    finally:
        gateway.stop(30)
        if service is not None:
            service.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
