"""The real gRPC server on a scripted engine (test double), its lifecycle: readiness waits for the
engine, engine death ends the streams, and a drain finishes admitted work and refuses the rest."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from gptoss.contract import READINESS_SERVICE, REQUEST_ID_METADATA
from gptoss.v1 import inference_pb2 as pb
from gptoss.v1 import inference_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from service.config import Settings
from service.lifecycle import Phase
from service.planner import RequestPlanner
from tests.conftest import wait_until
from tests.integration.test_generate_live import assert_well_formed, error_info
from tests.support.scripted_engine import (
    USER,
    ScriptedEngine,
    streaming_text,
    stub_for,
)
from tests.support.server_thread import ServerThread

ServerFactory = Callable[..., ServerThread]


def test_readiness_waits_for_the_engine() -> None:
    release = threading.Event()
    engine = ScriptedEngine([[1]])

    async def slow_factory(_settings: Settings) -> ScriptedEngine:
        await asyncio.to_thread(release.wait, 30)
        return engine

    server = ServerThread(Settings(profile="cpu-tiny", port=0, metrics_port=None), slow_factory).start(
        wait_ready=False
    )
    try:
        with grpc.insecure_channel(server.target) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            check = lambda name: health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5).status  # noqa: E731
            assert check("") == health_pb2.HealthCheckResponse.SERVING
            assert check(READINESS_SERVICE) == health_pb2.HealthCheckResponse.NOT_SERVING
            stub = inference_pb2_grpc.InferenceServiceStub(channel)
            with pytest.raises(grpc.RpcError) as raised:
                list(stub.Generate(pb.GenerateRequest(messages=USER), timeout=5))
            assert raised.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
            assert error_info(raised.value).reason == "ENGINE_STARTING"
            release.set()
            assert wait_until(lambda: check(READINESS_SERVICE) == health_pb2.HealthCheckResponse.SERVING)
    finally:
        release.set()
        server.stop()


def test_engine_death_ends_streams_with_unavailable(scripted_server: ServerFactory) -> None:
    server = scripted_server(streaming_text(500), step_delay=0.01)
    engine = server.engine
    assert isinstance(engine, ScriptedEngine)
    channel, stub = stub_for(server)
    with channel:
        call = stub.Generate(pb.GenerateRequest(messages=USER, max_tokens=400), timeout=20)
        next(call)
        engine.kill()
        with pytest.raises(grpc.RpcError) as raised:
            list(call)
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
    assert server.service is not None
    assert wait_until(lambda: server.service.stopped.is_set(), timeout=10)  # type: ignore[union-attr]
    assert server.service.exit_code == 1


def test_drain_finishes_in_flight_and_refuses_new(scripted_server: ServerFactory) -> None:
    server = scripted_server(streaming_text(60), step_delay=0.02)
    assert server.service is not None
    channel, stub = stub_for(server)
    with channel:
        calls = [
            stub.Generate(pb.GenerateRequest(messages=USER, max_tokens=50), timeout=20) for _ in range(4)
        ]
        for call in calls:
            next(call)
        drain = server.run_soon(server.service.drain_and_stop(10.0))
        health = health_pb2_grpc.HealthStub(channel)
        assert wait_until(
            lambda: (
                health.Check(health_pb2.HealthCheckRequest(service=READINESS_SERVICE), timeout=5).status
                == health_pb2.HealthCheckResponse.NOT_SERVING
            )
        )
        with pytest.raises(grpc.RpcError) as raised:
            list(stub.Generate(pb.GenerateRequest(messages=USER), timeout=5))
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
        assert error_info(raised.value).reason == "DRAINING"
        for call in calls:
            done = assert_well_formed([*call])
            assert done.finish_reason == pb.FINISH_REASON_LENGTH and done.usage.completion_tokens == 50
        drain.result(15)
    assert server.service.exit_code == 0


def test_a_request_admitted_just_before_a_drain_is_served(
    scripted_server: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race behind a flaky failover: drain starts after admission (headers already sent), before
    the engine call. Drain semantics say in-flight work finishes; it used to fail UNAVAILABLE
    DRAINING, which no client can retry once headers are out."""
    server = scripted_server(streaming_text(5))
    assert server.service is not None
    state = server.service.state
    original = RequestPlanner.plan_generate

    async def plan_then_drain(self: RequestPlanner, request: pb.GenerateRequest, *args: Any) -> Any:
        plan = await original(self, request, *args)
        state.set_phase(Phase.DRAINING)
        return plan

    monkeypatch.setattr(RequestPlanner, "plan_generate", plan_then_drain)
    channel, stub = stub_for(server)
    with channel:
        done = assert_well_formed(list(stub.Generate(pb.GenerateRequest(messages=USER), timeout=10)))
        assert done.finish_reason == pb.FINISH_REASON_LENGTH
        with pytest.raises(grpc.RpcError) as raised:  # new work is refused, as before
            list(stub.Generate(pb.GenerateRequest(messages=USER), timeout=10))
        assert error_info(raised.value).reason == "DRAINING"


def test_a_queued_request_that_waits_into_a_drain_is_refused_before_headers(
    scripted_server: ServerFactory,
) -> None:
    server = scripted_server(
        streaming_text(40), step_delay=0.02, max_concurrent_requests=1, admission_queue_size=1
    )
    assert server.service is not None
    engine = server.engine
    assert isinstance(engine, ScriptedEngine)
    channel, stub = stub_for(server)
    with channel:
        running = stub.Generate(pb.GenerateRequest(messages=USER, max_tokens=30), timeout=20)
        next(running)
        queued = stub.Generate(pb.GenerateRequest(messages=USER), timeout=20)
        assert wait_until(lambda: server.service is not None and server.service.state.queued == 1)
        state = server.service.state

        async def begin_drain() -> None:  # on the server's loop, as SIGTERM's handler runs
            state.set_phase(Phase.DRAINING)

        server.call(begin_drain())
        assert_well_formed([*running])  # in flight: finishes
        with pytest.raises(grpc.RpcError) as raised:
            list(queued)
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
        assert error_info(raised.value).reason == "DRAINING"
        # Trailers-only: no header went out, so gRPC retry policies may send it to another replica.
        assert REQUEST_ID_METADATA not in dict(queued.initial_metadata() or ())  # type: ignore[attr-defined]
        assert server.service.state.active_streams == 0


def test_an_idle_drain_keeps_the_port_open_until_watchers_know(scripted_server: ServerFactory) -> None:
    """The cause of a flaky failover: with nothing in flight the drain closed the port at once, so a
    call the gateway sent before its health watch saw NOT_SERVING met a stopping server, which
    cancels calls no handler took yet (CANCELLED, never retried: grpc/grpc#41785)."""
    server = scripted_server(streaming_text(5))
    assert server.service is not None
    assert server.service.settings.drain_announce_seconds >= 0.5
    channel, stub = stub_for(server)
    with channel:
        watch = health_pb2_grpc.HealthStub(channel).Watch(
            health_pb2.HealthCheckRequest(service=READINESS_SERVICE), timeout=20
        )
        assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
        drain = server.run_soon(server.service.drain_and_stop(5.0))
        assert next(watch).status == health_pb2.HealthCheckResponse.NOT_SERVING
        # What the watcher's in-flight call meets: a listening server that refuses it retryably.
        with pytest.raises(grpc.RpcError) as raised:
            list(stub.Generate(pb.GenerateRequest(messages=USER), timeout=5))
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
        assert error_info(raised.value).reason == "DRAINING"
        assert not drain.done()
        watch.cancel()
        drain.result(15)
    assert server.service.exit_code == 0
