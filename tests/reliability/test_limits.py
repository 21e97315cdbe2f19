"""Request limits, each a setting (flag / GPTOSS_* env) and each a clear error before any engine work:
message size (gRPC max_receive_message_length -> RESOURCE_EXHAUSTED), messages and tools per request
and prompt tokens (INVALID_ARGUMENT with ErrorInfo param / reason)."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest
from google.protobuf import struct_pb2
from gptoss.v1 import inference_pb2 as pb
from gptoss.v1 import inference_pb2_grpc

from service.config import Settings, load_settings
from tests.integration.test_generate_live import error_info
from tests.reliability.helpers import Tally
from tests.support.scripted_engine import USER, ScriptedEngine, one_token_per_step
from tests.support.server_thread import ServerThread

ServerFactory = Callable[..., ServerThread]
SCRIPT = one_token_per_step("<|channel|>final<|message|>ok<|return|>")


def _user(text: str) -> pb.Message:
    return pb.Message(role=pb.ROLE_USER, content=text)


def _tool(name: str) -> pb.Tool:
    parameters = struct_pb2.Struct()
    parameters.update({"type": "object", "properties": {"x": {"type": "string"}}})
    return pb.Tool(name=name, description="d", parameters=parameters)


def _outcome(
    stub: inference_pb2_grpc.InferenceServiceStub, request: pb.GenerateRequest
) -> grpc.RpcError | None:
    try:
        responses = list(stub.Generate(request, timeout=10))
    except grpc.RpcError as error:
        return error
    assert responses[-1].HasField("done")
    return None


def test_every_limit_is_a_setting() -> None:
    settings = load_settings(
        [
            "--profile=cpu-tiny",
            "--max-request-bytes=2048",
            "--max-messages=3",
            "--max-tools=2",
            "--max-model-len=256",
            "--max-concurrent-requests=5",
            "--admission-queue-size=7",
            "--admission-queue-timeout-seconds=1.5",
        ]
    )
    assert (settings.max_request_bytes, settings.max_messages, settings.max_tools) == (2048, 3, 2)
    assert (settings.max_model_len, settings.max_concurrent_requests) == (256, 5)
    assert (settings.admission_queue_size, settings.admission_queue_timeout_seconds) == (7, 1.5)
    defaults = Settings(profile="gpt-oss-120b-tp4")
    assert defaults.max_request_bytes == 4 << 20 and defaults.admission_queue_size == 0
    with pytest.raises(ValueError):
        Settings(max_request_bytes=10)  # below 1 KiB: not a usable limit


def test_limits_are_clear_errors_before_the_engine(scripted_server: ServerFactory) -> None:
    server = scripted_server(SCRIPT, max_request_bytes=2048, max_messages=3, max_tools=2, max_model_len=256)
    engine = server.engine
    assert isinstance(engine, ScriptedEngine)
    engine_requests = engine.requests
    tally = Tally("limits (scripted server: 2 KiB, 3 messages, 2 tools, 256-token context)")
    with grpc.insecure_channel(server.target) as channel:
        stub = inference_pb2_grpc.InferenceServiceStub(channel)

        def refused(request: pb.GenerateRequest, code: grpc.StatusCode) -> grpc.RpcError:
            error = _outcome(stub, request)
            tally.add(f"refused {code.name}" if error is not None else "accepted")
            assert error is not None, "over the limit but accepted"
            assert error.code() == code, (error.code(), error.details())  # type: ignore[attr-defined]
            return error

        def accepted(request: pb.GenerateRequest) -> None:
            error = _outcome(stub, request)
            tally.add("accepted" if error is None else f"refused {error.code().name}")  # type: ignore[attr-defined]
            assert error is None, error.details()  # type: ignore[attr-defined]

        # Message size: gRPC refuses the bytes before our code runs.
        accepted(pb.GenerateRequest(messages=[_user("x" * 1500)]))
        big = refused(pb.GenerateRequest(messages=[_user("x" * 4000)]), grpc.StatusCode.RESOURCE_EXHAUSTED)
        assert "larger than max" in big.details() and "2048" in big.details()  # type: ignore[attr-defined]

        # Messages per request.
        accepted(pb.GenerateRequest(messages=[_user("a"), _user("b"), _user("c")]))
        many = refused(
            pb.GenerateRequest(messages=[_user(c) for c in "abcd"]), grpc.StatusCode.INVALID_ARGUMENT
        )
        assert "at most 3 messages" in many.details()  # type: ignore[attr-defined]
        assert (
            error_info(many).metadata["param"] == "messages" and error_info(many).reason == "INVALID_REQUEST"
        )

        # Tools per request.
        accepted(pb.GenerateRequest(messages=USER, tools=[_tool("f1"), _tool("f2")]))
        tools = refused(
            pb.GenerateRequest(messages=USER, tools=[_tool("f1"), _tool("f2"), _tool("f3")]),
            grpc.StatusCode.INVALID_ARGUMENT,
        )
        assert "at most 2 tools" in tools.details()  # type: ignore[attr-defined]
        assert error_info(tools).metadata["param"] == "tools"

        # Prompt tokens: the rendered prompt must leave room for output in the configured context.
        accepted(pb.GenerateRequest(prompt_token_ids=[1] * 200, max_tokens=50))
        for request, param in (
            (pb.GenerateRequest(prompt_token_ids=[1] * 256), "prompt_token_ids"),
            (pb.GenerateRequest(messages=[_user("hello " * 300)]), "messages"),
            (pb.GenerateRequest(prompt_token_ids=[1] * 200, max_tokens=57), "max_tokens"),
        ):
            long = refused(request, grpc.StatusCode.INVALID_ARGUMENT)
            info = error_info(long)
            assert info.reason == "CONTEXT_LENGTH_EXCEEDED" and info.metadata["param"] == param, info
            assert "256" in long.details()  # type: ignore[attr-defined]
        counted = stub.CountTokens(pb.CountTokensRequest(messages=USER), timeout=5)
        assert counted.max_context_length == 256

    tally.report()
    accepted_count = tally.counts["accepted"]
    assert accepted_count == 4 and tally.total == 10
    assert engine.requests - engine_requests == accepted_count  # refusals never reached the engine


def test_default_message_size_limit_is_4_mib(scripted_server: ServerFactory) -> None:
    server = scripted_server(SCRIPT)
    with grpc.insecure_channel(server.target) as channel:
        stub = inference_pb2_grpc.InferenceServiceStub(channel)
        error = _outcome(stub, pb.GenerateRequest(messages=[_user("x" * (5 << 20))]))
    assert error is not None and error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # type: ignore[attr-defined]
    assert str(4 << 20) in error.details()  # type: ignore[attr-defined]
