"""Pure parts of the client: request building, error mapping, folding events into a Completion."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.protobuf import any_pb2, json_format
from google.rpc import error_details_pb2, status_pb2
from gptoss import (
    AuthenticationError,
    ContentDelta,
    ContextLengthExceededError,
    Done,
    FinishReason,
    OverloadedError,
    ToolCall,
    ToolCallDelta,
    UnavailableError,
    build_count_tokens_request,
    build_generate_request,
)
from gptoss.connection import RetryPolicy, TlsConfig
from gptoss.errors import from_rpc_error, parse_error_info
from gptoss.result import CompletionBuilder
from gptoss.v1 import inference_pb2 as pb

WEATHER_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


def test_messages_in_our_shape_and_openai_shape_build_the_same_proto() -> None:
    ours = {
        "role": "assistant",
        "content": "",
        "reasoning": "need weather",
        "tool_calls": [{"id": "c1", "name": "get_weather", "arguments": {"city": "Paris"}}],
    }
    openai = {
        "role": "assistant",
        "content": None,
        "reasoning_content": "need weather",
        "tool_calls": [
            {
                "id": "c1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            }
        ],
    }
    a = build_generate_request(messages=[ours]).messages[0]
    b = build_generate_request(messages=[openai]).messages[0]
    assert a == b
    assert a.role == pb.ROLE_ASSISTANT
    assert (a.tool_calls[0].id, a.tool_calls[0].name, a.tool_calls[0].arguments) == (
        "c1",
        "get_weather",
        '{"city": "Paris"}',
    )


def test_tool_result_message_and_tools() -> None:
    request = build_generate_request(
        messages=[{"role": "tool", "tool_call_id": "c1", "name": "get_weather", "content": "sunny"}],
        tools=[
            {
                "type": "function",
                "function": {"name": "get_weather", "description": "d", "parameters": WEATHER_SCHEMA},
            }
        ],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    message, tool = request.messages[0], request.tools[0]
    assert (message.role, message.tool_call_id, message.name, message.content) == (
        pb.ROLE_TOOL,
        "c1",
        "get_weather",
        "sunny",
    )
    assert tool.name == "get_weather" and tool.description == "d"
    assert json_format.MessageToDict(tool.parameters) == WEATHER_SCHEMA
    assert request.tool_choice.mode == pb.TOOL_CHOICE_MODE_FUNCTION
    assert request.tool_choice.function_name == "get_weather"


def test_sampling_options_and_raw_mode() -> None:
    request = build_generate_request(
        prompt_token_ids=[1, 2, 3], max_tokens=7, top_k=5, seed=0, stop=["a", "b"], ignore_eos=True, model="m"
    )
    assert list(request.prompt_token_ids) == [1, 2, 3] and not request.messages
    assert request.max_tokens == 7 and request.top_k == 5
    assert request.HasField("seed") and request.seed == 0  # 0 is a real seed, not "unset"
    assert not request.HasField("temperature")
    assert list(request.stop) == ["a", "b"] and request.ignore_eos and request.model == "m"


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"messages": [{"role": "robot", "content": "x"}]}, ValueError),
        ({"messages": [{"role": "user", "content": 3}]}, ValueError),
        ({"messages": ["hi"]}, TypeError),
        ({"messages": [], "reasoning_effort": "extreme"}, ValueError),
        ({"messages": [], "tools": [{"description": "no name"}]}, ValueError),
        ({"messages": [], "tools": [{"name": "f", "parameters": "not a schema"}]}, ValueError),
        ({"messages": [], "tool_choice": "sometimes"}, ValueError),
        ({"messages": [], "temprature": 0.5}, TypeError),
        ({}, ValueError),
    ],
)
def test_bad_options_fail_before_any_rpc(kwargs: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        build_generate_request(**kwargs)  # type: ignore[arg-type]


def test_count_tokens_request_carries_the_conversation() -> None:
    request = build_count_tokens_request(
        messages=[{"role": "system", "content": "s"}, {"role": "user", "content": "u"}],
        reasoning_effort="low",
        tool_choice="none",
    )
    assert [m.role for m in request.messages] == [pb.ROLE_SYSTEM, pb.ROLE_USER]
    assert request.reasoning_effort == pb.REASONING_EFFORT_LOW
    assert request.tool_choice.mode == pb.TOOL_CHOICE_MODE_NONE


def _details(reason: str, metadata: dict[str, str]) -> bytes:
    packed = any_pb2.Any()
    packed.Pack(error_details_pb2.ErrorInfo(reason=reason, domain="gptoss.v1", metadata=metadata))
    return bytes(status_pb2.Status(code=3, message="m", details=[packed]).SerializeToString())


class _FakeRpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, trailers: tuple[tuple[str, bytes | str], ...]) -> None:
        self._code, self._trailers = code, trailers

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return "message from server"

    def trailing_metadata(self) -> Any:
        return self._trailers


def test_reason_refines_the_code_but_never_contradicts_it() -> None:
    detail = (("grpc-status-details-bin", _details("CONTEXT_LENGTH_EXCEEDED", {"param": "messages"})),)
    error = from_rpc_error(_FakeRpcError(grpc.StatusCode.INVALID_ARGUMENT, detail))
    assert isinstance(error, ContextLengthExceededError) and error.param == "messages"
    assert "CONTEXT_LENGTH_EXCEEDED" in str(error) and "param=messages" in str(error)
    # A reason that does not fit the code (auth reason on UNAVAILABLE) keeps the code's class.
    odd = (("grpc-status-details-bin", _details("INVALID_API_KEY", {})),)
    assert type(from_rpc_error(_FakeRpcError(grpc.StatusCode.UNAVAILABLE, odd))) is UnavailableError
    assert type(from_rpc_error(_FakeRpcError(grpc.StatusCode.UNAUTHENTICATED, ()))) is AuthenticationError
    overloaded = (("grpc-status-details-bin", _details("OVERLOADED", {"retry_after_s": "2"})),)
    error = from_rpc_error(_FakeRpcError(grpc.StatusCode.RESOURCE_EXHAUSTED, overloaded))
    assert isinstance(error, OverloadedError) and error.retry_after_s == 2.0


def test_parse_error_info_ignores_other_trailers() -> None:
    assert parse_error_info([("x-other", "v"), ("grpc-status-details-bin", b"")]) == ("", "", {})
    assert parse_error_info(None) == ("", "", {})


def test_retry_policy_honours_retry_after_within_its_cap() -> None:
    policy = RetryPolicy(max_attempts=5, initial_backoff_s=0.1, max_backoff_s=2.0)
    assert 0.05 <= policy.backoff_s(1) <= 0.1
    assert 0.1 <= policy.backoff_s(2) <= 0.2
    assert policy.backoff_s(1, retry_after_s=1.5) == 1.5
    assert policy.backoff_s(1, retry_after_s=60) == 2.0
    assert policy.backoff_s(10) <= 2.0


def test_tls_config_checks_the_client_pair() -> None:
    with pytest.raises(ValueError, match="both"):
        TlsConfig(client_certificate=b"cert").credentials()


def test_builder_handles_calls_without_done_event_and_stream_without_done() -> None:
    builder = CompletionBuilder()
    builder.add(ContentDelta("x"))
    builder.add(ToolCallDelta(index=0, id="c", name="f", arguments_delta='{"a"'))
    builder.add(ToolCallDelta(index=0, id="", name="", arguments_delta=": 1}"))
    result = builder.result()
    assert not builder.done
    assert result.finish_reason is FinishReason.UNSPECIFIED
    assert result.tool_calls == (ToolCall("c", "f", '{"a": 1}'),)
    builder.add(Done(FinishReason.LENGTH))
    assert builder.done and builder.result().finish_reason is FinishReason.LENGTH
