"""The real gRPC server on a scripted engine (test double): exact token sequences and lifecycle."""

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
from service.harmony import tokens as tk
from service.lifecycle import Phase
from service.planner import RequestPlanner
from tests.conftest import wait_until
from tests.integration.test_generate_live import assert_well_formed, error_info
from tests.support.scripted_engine import ScriptedEngine
from tests.support.server_thread import ServerThread

USER = [pb.Message(role=pb.ROLE_USER, content="Weather in Paris?")]
ServerFactory = Callable[..., ServerThread]


def toks(text: str) -> list[int]:
    return list(tk.encoding().encode(text, allowed_special="all"))


def one_token_per_step(text: str) -> list[list[int]]:
    return [[t] for t in toks(text)]


def streaming_text(steps: int) -> list[list[int]]:
    """A final-channel message that yields one content event per step."""
    return [toks("<|channel|>final<|message|>"), *([toks(" a")] * steps)]


def stub_for(server: ServerThread) -> tuple[grpc.Channel, inference_pb2_grpc.InferenceServiceStub]:
    channel = grpc.insecure_channel(server.target)
    return channel, inference_pb2_grpc.InferenceServiceStub(channel)


def test_tool_call_events_and_finish_reason(scripted_server: ServerFactory) -> None:
    script = one_token_per_step(
        "<|channel|>analysis<|message|>Need weather.<|end|>"
        '<|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{"city":"Paris"}<|call|>'
    )
    server = scripted_server(script)
    channel, stub = stub_for(server)
    with channel:
        responses = list(stub.Generate(pb.GenerateRequest(messages=USER), timeout=10))
    done = assert_well_formed(responses)
    reasoning = "".join(r.reasoning.text for r in responses if r.HasField("reasoning"))
    deltas = [r.tool_call for r in responses if r.HasField("tool_call")]
    finals = [r.tool_call_done for r in responses if r.HasField("tool_call_done")]
    assert reasoning == "Need weather."
    assert deltas[0].name == "get_weather" and deltas[0].id.startswith("call_")
    assert "".join(d.arguments_delta for d in deltas) == '{"city":"Paris"}'
    assert [(f.index, f.id, f.name, f.arguments) for f in finals] == [
        (0, deltas[0].id, "get_weather", '{"city":"Paris"}')
    ]
    assert done.finish_reason == pb.FINISH_REASON_TOOL_CALLS
    assert done.usage.completion_tokens == len(script)
    assert done.usage.reasoning_tokens == len(toks("Need weather.<|end|>"))
    assert done.error_message == ""


def test_stop_string_ends_the_stream_and_aborts(scripted_server: ServerFactory) -> None:
    server = scripted_server(
        one_token_per_step("<|channel|>final<|message|>one two STOP three four five<|return|>")
    )
    channel, stub = stub_for(server)
    with channel:
        responses = list(stub.Generate(pb.GenerateRequest(messages=USER, stop=["STOP"]), timeout=10))
    done = assert_well_formed(responses)
    assert "".join(r.content.text for r in responses if r.HasField("content")) == "one two "
    assert done.finish_reason == pb.FINISH_REASON_STOP
    engine = server.engine
    assert isinstance(engine, ScriptedEngine) and engine.num_unfinished_requests() == 0


def test_malformed_output_ends_cleanly(scripted_server: ServerFactory) -> None:
    server = scripted_server(
        [[tk.MESSAGE, 1, 2], [tk.START, tk.START, 999, tk.CHANNEL], [tk.MESSAGE, 77, tk.RETURN]]
    )
    channel, stub = stub_for(server)
    with channel:
        done = assert_well_formed(list(stub.Generate(pb.GenerateRequest(messages=USER), timeout=10)))
    assert done.finish_reason == pb.FINISH_REASON_STOP
    assert done.error_message.startswith("malformed Harmony output")


def test_concurrency_limit_rejects_before_the_engine(scripted_server: ServerFactory) -> None:
    server = scripted_server(streaming_text(200), step_delay=0.02, max_concurrent_requests=2)
    engine = server.engine
    assert isinstance(engine, ScriptedEngine)
    warm_up_requests = engine.requests
    channel, stub = stub_for(server)
    with channel:
        calls = [
            stub.Generate(pb.GenerateRequest(messages=USER, max_tokens=150), timeout=20) for _ in range(2)
        ]
        for call in calls:
            next(call)
        with pytest.raises(grpc.RpcError) as raised:
            list(stub.Generate(pb.GenerateRequest(messages=USER), timeout=5))
        assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # type: ignore[attr-defined]
        assert error_info(raised.value).reason == "OVERLOADED"
        assert engine.requests - warm_up_requests == 2
        for call in calls:
            assert_well_formed([*call])
        assert_well_formed(list(stub.Generate(pb.GenerateRequest(messages=USER, max_tokens=3), timeout=5)))


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


def test_api_keys_guard_inference_but_not_health(scripted_server: ServerFactory) -> None:
    server = scripted_server(
        one_token_per_step("<|channel|>final<|message|>ok<|return|>"), api_keys=["s3cret"]
    )
    channel, stub = stub_for(server)
    with channel:
        for metadata in ((), (("authorization", "Bearer wrong"),)):
            with pytest.raises(grpc.RpcError) as raised:
                list(stub.Generate(pb.GenerateRequest(messages=USER), timeout=5, metadata=metadata))
            assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
            assert error_info(raised.value).reason == "INVALID_API_KEY"
        with pytest.raises(grpc.RpcError) as raised:
            stub.GetModelInfo(pb.GetModelInfoRequest(), timeout=5)
        assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
        good = (("authorization", "Bearer s3cret"),)
        done = assert_well_formed(
            list(stub.Generate(pb.GenerateRequest(messages=USER), timeout=5, metadata=good))
        )
        assert done.finish_reason == pb.FINISH_REASON_STOP
        health = health_pb2_grpc.HealthStub(channel)
        assert (
            health.Check(health_pb2.HealthCheckRequest(), timeout=5).status
            == health_pb2.HealthCheckResponse.SERVING
        )


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


def test_an_admitted_request_refused_later_frees_its_slot_before_its_client_sees_the_error(
    scripted_server: ServerFactory,
) -> None:
    """A request refused after admission (here: unknown model) must not hold its slot once the
    client has its error: `abort` sends the status before the handler's `finally` runs, so a client
    retrying at once used to find the slot still taken (seen in ~1 of 12 tries before the fix)."""
    server = scripted_server(streaming_text(3))
    assert server.service is not None
    state = server.service.state
    channel, stub = stub_for(server)
    held_after_error = 0
    with channel:
        for _ in range(300):
            with pytest.raises(grpc.RpcError) as raised:
                list(stub.Generate(pb.GenerateRequest(messages=USER, model="other"), timeout=5))
            assert raised.value.code() == grpc.StatusCode.NOT_FOUND  # type: ignore[attr-defined]
            held_after_error += state.active_streams
    assert held_after_error == 0


def test_prompts_are_logged_only_when_enabled(
    scripted_server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    script = one_token_per_step("<|channel|>final<|message|>zebra-answer<|return|>")
    for enabled in (False, True):
        server = scripted_server(script, log_prompts=enabled)
        channel, stub = stub_for(server)
        caplog.clear()
        with caplog.at_level("INFO"), channel:
            request = pb.GenerateRequest(messages=[pb.Message(role=pb.ROLE_USER, content="quokka-prompt")])
            assert_well_formed(list(stub.Generate(request, timeout=10)))
            assert wait_until(lambda: any(r.getMessage() == "request done" for r in caplog.records))
        done = next(r for r in caplog.records if r.getMessage() == "request done")
        logged = str(done.__dict__)
        assert ("quokka-prompt" in logged, "zebra-answer" in logged) == (enabled, enabled)
