"""The soak's traffic: a weighted mix of what production sees, each outcome recorded by kind.

gRPC chat and raw-token streams read to the end, streams cancelled midway, deadlines that expire,
invalid requests, CountTokens / GetModelInfo; SSE through the gateway, SSE clients hanging up.
An outcome outside EXPECTED for its kind is "unexpected" and fails the soak.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import random
import time
from dataclasses import dataclass, field
from typing import Any

import grpc
import httpx
from gptoss.v1 import inference_pb2 as pb
from gptoss.v1 import inference_pb2_grpc

WORDS = "the sea a poem about light and water under stone wind river city night morning".split()
EXPECTED = {
    "grpc chat": {"OK"},
    "grpc raw": {"OK"},
    "grpc cancel": {"CANCELLED", "OK"},
    "grpc deadline": {"DEADLINE_EXCEEDED", "OK"},
    "grpc invalid": {"INVALID_ARGUMENT"},
    "grpc info": {"OK"},
    "sse stream": {"200"},
    "sse hang-up": {"200"},
    "http whole": {"200"},
}
MIX = [  # (kind, weight)
    ("grpc chat", 25),
    ("grpc raw", 15),
    ("grpc cancel", 15),
    ("grpc deadline", 5),
    ("grpc invalid", 5),
    ("grpc info", 5),
    ("sse stream", 15),
    ("sse hang-up", 10),
    ("http whole", 5),
]


@dataclass
class Run:
    started: float = field(default_factory=time.monotonic)
    outcomes: collections.Counter[tuple[str, str]] = field(default_factory=collections.Counter)
    unexpected: list[str] = field(default_factory=list)
    samples: list[dict[str, Any]] = field(default_factory=list)

    def record(self, kind: str, outcome: str, detail: str = "") -> None:
        self.outcomes[(kind, outcome)] += 1
        if outcome not in EXPECTED[kind] and len(self.unexpected) < 50:
            self.unexpected.append(f"{kind}: {outcome} {detail}".strip())


def _text(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 60)))


async def _grpc_one(
    stub: inference_pb2_grpc.InferenceServiceStub, kind: str, rng: random.Random, run: Run
) -> None:
    user = [pb.Message(role=pb.ROLE_USER, content=_text(rng))]
    try:
        if kind == "grpc info":
            await stub.GetModelInfo(pb.GetModelInfoRequest(), timeout=10)
            await stub.CountTokens(pb.CountTokensRequest(messages=user), timeout=10)
            run.record(kind, "OK")
            return
        if kind == "grpc invalid":
            bad = rng.choice(
                [
                    pb.GenerateRequest(),
                    pb.GenerateRequest(messages=user, max_tokens=-1),
                    pb.GenerateRequest(messages=user, temperature=9.0),
                    pb.GenerateRequest(messages=[pb.Message(role=42, content="x")]),  # type: ignore[arg-type]
                ]
            )
            await stub.Generate(bad, timeout=10).read()
            run.record(kind, "OK", "an invalid request was accepted")
            return
        if kind == "grpc raw" or kind == "grpc cancel":
            prompt = [
                200006,
                1428,
                200008,
                *(rng.randrange(1000, 199000) for _ in range(rng.randint(1, 200))),
            ]
            request = pb.GenerateRequest(
                prompt_token_ids=prompt, max_tokens=rng.randint(8, 64), ignore_eos=True
            )
        else:
            request = pb.GenerateRequest(messages=user, max_tokens=rng.randint(16, 64))
        timeout = rng.uniform(0.05, 0.5) if kind == "grpc deadline" else 120
        call = stub.Generate(request, timeout=timeout)
        events = 0
        cancel_after = rng.randint(0, 8) if kind == "grpc cancel" else None
        cancelled = False
        async for response in call:
            events += 1
            if cancel_after is not None and events > cancel_after:
                call.cancel()
                cancelled = True
                break
            if response.HasField("done") and response.done.finish_reason == pb.FINISH_REASON_UNSPECIFIED:
                run.record(kind, "BAD_DONE")
                return
        if cancelled:
            run.record(kind, (await call.code()).name)
        else:
            run.record(kind, "OK" if events else "EMPTY")
    except grpc.aio.AioRpcError as error:
        run.record(kind, error.code().name, error.details() or "")
    except asyncio.CancelledError:
        run.record(kind, "CANCELLED")


async def _http_one(client: httpx.AsyncClient, kind: str, model: str, rng: random.Random, run: Run) -> None:
    body = {
        "model": model,
        "messages": [{"role": "user", "content": _text(rng)}],
        "max_tokens": rng.randint(8, 64),
    }
    try:
        if kind == "http whole":
            response = await client.post("/v1/chat/completions", json=body)
            run.record(
                kind, str(response.status_code), response.text[:200] if response.status_code != 200 else ""
            )
            return
        async with client.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as response:
            status = str(response.status_code)
            if response.status_code != 200:
                run.record(kind, status, (await response.aread()).decode()[:200])
                return
            if kind == "sse hang-up":
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(rng.uniform(0, 0.5)):
                        async for _ in response.aiter_lines():
                            pass
                run.record(kind, status)  # leaving the block hangs up
                return
            last = ""
            async for line in response.aiter_lines():
                if line.startswith("data:"):
                    last = line
                    if '"error"' in line:
                        run.record(kind, "error event", line[:200])
                        return
            run.record(kind, status if last == "data: [DONE]" else "no [DONE]")
    except httpx.HTTPError as error:
        run.record(kind, type(error).__name__, str(error)[:200])


async def load(
    target: str, gateway_url: str, model: str, run: Run, *, duration: float, concurrency: int, seed: int
) -> None:
    """`concurrency` workers, each drawing kinds from MIX until `duration` seconds have passed."""
    kinds = [kind for kind, _ in MIX]
    weights = [weight for _, weight in MIX]
    deadline = time.monotonic() + duration
    limits = httpx.Limits(max_connections=concurrency * 2)
    async with (
        grpc.aio.insecure_channel(target) as channel,
        httpx.AsyncClient(base_url=gateway_url, timeout=120, limits=limits) as client,
    ):
        stub = inference_pb2_grpc.InferenceServiceStub(channel)

        async def worker(worker_seed: int) -> None:
            rng = random.Random(worker_seed)
            while time.monotonic() < deadline:
                kind = rng.choices(kinds, weights)[0]
                one = (
                    _grpc_one(stub, kind, rng, run)
                    if kind.startswith("grpc")
                    else _http_one(client, kind, model, rng, run)
                )
                try:
                    await asyncio.wait_for(one, 180)
                except TimeoutError:
                    run.record(kind, "HANG")

        await asyncio.gather(*(worker(seed + i) for i in range(concurrency)))
