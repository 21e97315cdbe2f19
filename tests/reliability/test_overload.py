"""Overload: offered load at twice the concurrency limit. The excess is refused with
RESOURCE_EXHAUSTED (reason OVERLOADED, retry_after_s) at once and never reaches the engine, the
admitted streams finish, and nothing ends INTERNAL. On a scripted engine with slow steps, on the
real vLLM engine, and through the gateway (429 + Retry-After)."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable, Iterator

import grpc
import httpx
import pytest
from gptoss.contract import STATUS_DETAILS_KEY
from gptoss.v1 import inference_pb2 as pb
from gptoss.v1 import inference_pb2_grpc

from tests.reliability.helpers import Tally, error_reason
from tests.support.gateway_thread import GatewayThread
from tests.support.scripted_engine import USER, streaming_text
from tests.support.server_thread import ServerThread

ServerFactory = Callable[..., ServerThread]
LIMIT = 4
FAST = 0.25  # a refusal must come back within this (it does no work); admitted streams take seconds


class Load:
    """`clients` concurrent closed-loop clients for `seconds`: each sends, waits for the end, repeats."""

    def __init__(self, name: str) -> None:
        self.tally = Tally(name)
        self.refusal_seconds: list[float] = []
        self.ok_seconds: list[float] = []
        self.unexpected: list[str] = []
        self.peak_engine = 0

    async def run(
        self,
        target: str,
        request: pb.GenerateRequest,
        clients: int,
        seconds: float,
        engine_count: Callable[[], int],
    ) -> None:
        deadline = time.monotonic() + seconds
        async with grpc.aio.insecure_channel(target) as channel:
            stub = inference_pb2_grpc.InferenceServiceStub(channel)

            async def client() -> None:
                while time.monotonic() < deadline:
                    await self._one(stub, request)

            async def sample() -> None:
                while time.monotonic() < deadline:
                    self.peak_engine = max(self.peak_engine, engine_count())
                    await asyncio.sleep(0.01)

            await asyncio.wait_for(
                asyncio.gather(sample(), *(client() for _ in range(clients))), seconds + 120
            )

    async def _one(self, stub: inference_pb2_grpc.InferenceServiceStub, request: pb.GenerateRequest) -> None:
        started = time.monotonic()
        try:
            responses = [response async for response in stub.Generate(request, timeout=60)]
        except grpc.aio.AioRpcError as error:
            elapsed = time.monotonic() - started
            self.tally.add(error.code().name)
            if error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and error_reason(error) == "OVERLOADED":
                self.refusal_seconds.append(elapsed)
                trailing = dict(error.trailing_metadata() or ())
                assert STATUS_DETAILS_KEY in trailing
            else:
                self.unexpected.append(f"{error.code().name}: {error.details()}")
            await asyncio.sleep(0.005)  # a real client would honour retry_after_s; keep the pressure on
            return
        self.ok_seconds.append(time.monotonic() - started)
        done = responses[-1].done if responses and responses[-1].HasField("done") else None
        if done is None or done.usage.completion_tokens != request.max_tokens:
            self.unexpected.append(f"OK without a full Done: {done}")
        self.tally.add("OK")

    def check(self, limit: int) -> None:
        p99 = statistics.quantiles(self.refusal_seconds, n=100)[98] if len(self.refusal_seconds) > 1 else 0.0
        self.tally.report(
            refusal_p50_ms=round(1000 * statistics.median(self.refusal_seconds), 1)
            if self.refusal_seconds
            else None,
            refusal_p99_ms=round(1000 * p99, 1),
            refusal_max_ms=round(1000 * max(self.refusal_seconds, default=0), 1),
            admitted_p50_s=round(statistics.median(self.ok_seconds), 2) if self.ok_seconds else None,
            peak_in_engine=self.peak_engine,
        )
        assert not self.unexpected, self.unexpected[:5]
        assert set(self.tally.counts) == {"OK", "RESOURCE_EXHAUSTED"}, self.tally.counts
        assert self.tally.counts["OK"] >= limit
        assert self.peak_engine <= limit  # the excess never reached the engine
        assert p99 < FAST and max(self.refusal_seconds) < 4 * FAST, "refusals are not immediate"
        assert min(self.ok_seconds) > max(FAST, p99)  # refusing is far cheaper than serving


async def test_overload_at_twice_the_limit_scripted(scripted_server: ServerFactory) -> None:
    server = scripted_server(streaming_text(100), step_delay=0.02, max_concurrent_requests=LIMIT)
    request = pb.GenerateRequest(messages=USER, max_tokens=40)  # ~0.8 s of slow steps per stream
    load = Load("overload 2x, scripted engine (limit 4, 8 clients, 4 s)")
    await load.run(
        server.target,
        request,
        clients=2 * LIMIT,
        seconds=4.0,
        engine_count=server.engine.num_unfinished_requests,
    )
    load.check(LIMIT)
    assert server.service is not None and server.service.state.active_streams == 0


@pytest.fixture
def live_limit(live_server: ServerThread) -> Iterator[ServerThread]:
    """The shared live server with its concurrency limit lowered to LIMIT for one test (a second
    engine would cost a minute of CPU; the limit is the same ServiceState field the setting fills)."""
    assert live_server.service is not None
    state = live_server.service.state
    saved = state.max_concurrent_requests
    state.max_concurrent_requests = LIMIT
    try:
        yield live_server
    finally:
        state.max_concurrent_requests = saved


@pytest.mark.engine
async def test_overload_at_twice_the_limit_real_engine(live_limit: ServerThread) -> None:
    request = pb.GenerateRequest(
        prompt_token_ids=[200006, 1428, 200008, 12194], max_tokens=48, ignore_eos=True
    )
    load = Load("overload 2x, vLLM engine (limit 4, 8 clients, 6 s)")
    await load.run(
        live_limit.target,
        request,
        clients=2 * LIMIT,
        seconds=6.0,
        engine_count=live_limit.engine.num_unfinished_requests,
    )
    load.check(LIMIT)


async def test_gateway_answers_429_with_retry_after(
    scripted_server: ServerFactory, start_gateway: Callable[..., GatewayThread]
) -> None:
    server = scripted_server(streaming_text(100), step_delay=0.02, max_concurrent_requests=2)
    gateway = start_gateway([server.target])
    tally = Tally("overload 2x through the gateway (limit 2, 4 clients x 3 rounds)")
    refusals: list[float] = []
    body = {
        "model": server.settings.model_id,
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 40,
    }

    async def one(client: httpx.AsyncClient, stream: bool) -> None:
        started = time.monotonic()
        response = await client.post("/v1/chat/completions", json={**body, "stream": stream})
        tally.add(str(response.status_code))
        if response.status_code == 429:
            refusals.append(time.monotonic() - started)
            assert response.headers["retry-after"] == "1"
            error = response.json()["error"]
            assert error["type"] == "rate_limit_error" and error["code"] == "overloaded", error
        elif response.status_code == 200 and stream:
            assert response.text.rstrip().endswith("data: [DONE]")

    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as client:
        for stream in (False, True, True):
            await asyncio.gather(*(one(client, stream) for _ in range(4)))
    tally.report(refusal_max_ms=round(1000 * max(refusals, default=0), 1))
    assert tally.counts["200"] >= 6 and tally.counts["429"] >= 3, tally.counts
    assert set(tally.counts) == {"200", "429"}, tally.counts  # no 500, no 503
    assert max(refusals) < 1.0  # well under the ~0.8 s an admitted request takes, plus slack
