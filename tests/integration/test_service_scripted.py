"""The real gRPC server on a scripted engine (test double): exact token sequences, limits, API keys
and logging. Readiness, engine death and draining: test_lifecycle_scripted.py."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest
from gptoss.v1 import inference_pb2 as pb
from grpc_health.v1 import health_pb2, health_pb2_grpc

from service.harmony import tokens as tk
from tests.conftest import wait_until
from tests.integration.test_generate_live import assert_well_formed, error_info
from tests.support.scripted_engine import (
    USER,
    ScriptedEngine,
    one_token_per_step,
    streaming_text,
    stub_for,
    toks,
)
from tests.support.server_thread import ServerThread

ServerFactory = Callable[..., ServerThread]


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
