"""Harmony rendering in worker processes (`render_workers`): same prompts, same errors, survives a dead worker."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Callable

import grpc
import pytest
from gptoss.contract import READINESS_SERVICE
from gptoss.v1 import inference_pb2 as pb
from gptoss.v1 import inference_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from service.config import Settings
from service.planner import RequestPlanner
from service.prompt_renderer import INLINE_BELOW_CHARS, PromptRenderer
from tests.integration.test_generate_live import assert_well_formed, error_info
from tests.support.server_thread import ServerThread

ServerFactory = Callable[..., ServerThread]
LONG_TEXT = "Summarise these notes: " + "the river runs north past the old mill " * (INLINE_BELOW_CHARS // 30)
TOOL = pb.Tool(name="get_weather", description="Weather for a city")
TOOL.parameters.update({"type": "object", "properties": {"city": {"type": "string"}}})


def _generate(server: ServerThread, request: pb.GenerateRequest) -> list[pb.GenerateResponse]:
    with grpc.insecure_channel(server.target) as channel:
        stub = inference_pb2_grpc.InferenceServiceStub(channel)
        return list(stub.Generate(request, timeout=30))


def test_long_prompt_renders_in_a_worker_exactly_as_inline(scripted_server: ServerFactory) -> None:
    server = scripted_server([[1]], render_workers=2)
    renderer = server.service.renderer  # type: ignore[union-attr]
    assert renderer._pool is not None  # started with readiness
    messages = [
        pb.Message(role=pb.ROLE_SYSTEM, content="Be brief."),
        pb.Message(role=pb.ROLE_USER, content=LONG_TEXT),
    ]
    request = pb.GenerateRequest(messages=messages, tools=[TOOL], max_tokens=1, request_id="pooled-1")
    assert_well_formed(_generate(server, request))
    planner = RequestPlanner(Settings(profile="cpu-tiny"), PromptRenderer(workers=0))
    expected = asyncio.run(planner.plan_generate(request, "pooled-1", "")).prompt_token_ids
    assert server.service.state.engine.prompts[-1] == expected  # type: ignore[union-attr, attr-defined]


def test_render_error_from_a_worker_is_invalid_argument(scripted_server: ServerFactory) -> None:
    server = scripted_server([[1]], render_workers=1)
    messages = [
        pb.Message(role=pb.ROLE_USER, content=LONG_TEXT),
        pb.Message(role=pb.ROLE_TOOL, content="18C", tool_call_id="call_unknown"),
    ]
    with pytest.raises(grpc.RpcError) as raised:
        _generate(server, pb.GenerateRequest(messages=messages, max_tokens=1))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(raised.value).metadata["param"] == "messages[1].tool_call_id"


def test_a_killed_worker_is_replaced_and_requests_keep_working(scripted_server: ServerFactory) -> None:
    server = scripted_server([[1]], render_workers=1)
    pool = server.service.renderer._pool  # type: ignore[union-attr]
    assert pool is not None
    for pid in list(pool._processes):  # type: ignore[attr-defined]
        os.kill(pid, signal.SIGKILL)
    request = pb.GenerateRequest(messages=[pb.Message(role=pb.ROLE_USER, content=LONG_TEXT)], max_tokens=1)
    for _ in range(3):  # the first may find the pool broken: rendered inline, then a new pool
        assert_well_formed(_generate(server, request))
    assert server.service.renderer._pool is not pool  # type: ignore[union-attr]


def test_a_pool_that_keeps_dying_is_switched_off(scripted_server: ServerFactory) -> None:
    server = scripted_server([[1]], render_workers=1)
    renderer = server.service.renderer  # type: ignore[union-attr]
    request = pb.GenerateRequest(messages=[pb.Message(role=pb.ROLE_USER, content=LONG_TEXT)], max_tokens=1)
    for _ in range(2):  # kill, let a request find it broken (restart), kill the new pool too
        pool = renderer._pool
        assert pool is not None
        for pid in list(pool._processes):  # type: ignore[attr-defined]
            os.kill(pid, signal.SIGKILL)
        for _ in range(3):
            assert_well_formed(_generate(server, request))
    assert renderer._pool is None  # second death within the window: inline from now on
    assert_well_formed(_generate(server, request))


def _health_latencies(server: ServerThread, busy: Callable[[], None]) -> list[float]:
    """Health-check round trips (seconds) measured while `busy` runs in another thread."""
    done = threading.Event()

    def run_busy() -> None:
        try:
            busy()
        finally:
            done.set()

    worker = threading.Thread(target=run_busy)
    latencies: list[float] = []
    with grpc.insecure_channel(server.target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        health.Check(health_pb2.HealthCheckRequest(service=READINESS_SERVICE), timeout=10)  # connect
        worker.start()
        while not done.is_set():
            started = time.monotonic()
            health.Check(health_pb2.HealthCheckRequest(service=READINESS_SERVICE), timeout=10)
            latencies.append(time.monotonic() - started)
            time.sleep(0.02)
    worker.join()
    return latencies


@pytest.mark.parametrize("where", ["messages", "tools"])
def test_large_count_tokens_renders_off_the_event_loop(
    scripted_server: ServerFactory, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """Issue 17 item 2: CountTokens rendered inline on the loop (health 5 ms -> 1.4 s during
    3.9 MB calls), and tool schemas/descriptions did not count towards "large"."""
    server = scripted_server([[1]], render_workers=1)
    pool = server.service.renderer._pool  # type: ignore[union-attr]
    assert pool is not None
    submitted: list[object] = []
    original = pool.submit
    monkeypatch.setattr(pool, "submit", lambda *a, **k: submitted.append(a[1]) or original(*a, **k))
    if where == "messages":
        request = pb.CountTokensRequest(messages=[pb.Message(role=pb.ROLE_USER, content="word " * 700_000)])
    else:  # short messages, 0.9 MB of tool descriptions and schemas (under max_tools_bytes)
        tools = [
            pb.Tool(name=f"tool_{i}", description="describe the tool at length " * 1000) for i in range(30)
        ]
        for tool in tools:
            tool.parameters.update({"type": "object", "properties": {"q": {"description": "x " * 1000}}})
        request = pb.CountTokensRequest(messages=[pb.Message(role=pb.ROLE_USER, content="hi")], tools=tools)
    counts: list[int] = []

    def count_four_times() -> None:
        with grpc.insecure_channel(
            server.target, options=[("grpc.max_send_message_length", 8 << 20)]
        ) as channel:
            stub = inference_pb2_grpc.InferenceServiceStub(channel)
            counts.extend(stub.CountTokens(request, timeout=120).prompt_tokens for _ in range(4))

    latencies = _health_latencies(server, count_four_times)
    assert len(counts) == 4 and counts[0] > 100_000 and len(set(counts)) == 1
    assert len(submitted) == 4  # every render went to the worker
    assert len(latencies) >= 3 and max(latencies) < 0.25, sorted(latencies)[-5:]  # loose: not a benchmark
