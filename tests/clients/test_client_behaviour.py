"""The sync client against the fake server: typed events, request options, error details, unary
calls and health. Retries, deadlines and cancellation: test_client_retries.py; async: test_async_client.py.

The fake pins sequences the real engine cannot be forced into (exact error details, readiness).
"""

from __future__ import annotations

import grpc
import pytest
from gptoss import (
    AuthenticationError,
    Client,
    ContentDelta,
    ContextLengthExceededError,
    Done,
    FinishReason,
    InvalidRequestError,
    NotFoundError,
    ReasoningDelta,
    ServerError,
    ServingStatus,
    ToolCall,
    ToolCallDelta,
    ToolCallDone,
    UnavailableError,
)
from gptoss.v1 import inference_pb2 as pb

from tests.clients.conftest import FAST_RETRY, UNAVAILABLE, USER
from tests.clients.fake_service import Fail, FakeServer, Reply, content, done, reasoning, tool_call


def test_events_are_typed_and_in_order(fake: FakeServer) -> None:
    fake.servicer.generate_script = [
        Reply(
            [
                reasoning("think "),
                reasoning("more"),
                content("Hel"),
                content("lo"),
                *tool_call(0, "c1", "f", '{"a": 1}'),
                done(),
            ]
        )
    ]
    with Client(fake.target) as client:
        events = list(client.generate(messages=USER))
    assert events[:4] == [
        ReasoningDelta("think "),
        ReasoningDelta("more"),
        ContentDelta("Hel"),
        ContentDelta("lo"),
    ]
    assert events[4] == ToolCallDelta(index=0, id="c1", name="f", arguments_delta="")
    assert events[7] == ToolCallDone(index=0, id="c1", name="f", arguments='{"a": 1}')
    last = events[-1]
    assert isinstance(last, Done)
    assert last.finish_reason is FinishReason.STOP
    assert (last.usage.prompt_tokens, last.usage.completion_tokens, last.usage.total_tokens) == (11, 7, 18)
    assert last.timings.queue_wait_s == pytest.approx(0.005)
    assert last.timings.time_to_first_token_s == pytest.approx(0.25)
    assert last.timings.decode_time_s == pytest.approx(1.5)
    assert last.timings.total_s is None  # unset on the wire is not "0 seconds"


def test_complete_collects_everything(fake: FakeServer) -> None:
    fake.servicer.generate_script = [
        Reply(
            [
                reasoning("r1"),
                content("a"),
                *tool_call(1, "c2", "g", "{}"),
                *tool_call(0, "c1", "f", '{"x": "y"}'),
                content("b"),
                done(pb.FINISH_REASON_TOOL_CALLS, request_id="rid-9"),
            ]
        )
    ]
    with Client(fake.target) as client:
        result = client.complete(messages=USER)
    assert result.reasoning == "r1"
    assert result.content == "ab"
    assert result.tool_calls == (ToolCall("c1", "f", '{"x": "y"}'), ToolCall("c2", "g", "{}"))
    assert result.tool_calls[0].parsed_arguments() == {"x": "y"}
    assert result.finish_reason is FinishReason.TOOL_CALLS
    assert result.request_id == "rid-9"
    assert result.as_assistant_message()["tool_calls"][1] == {"id": "c2", "name": "g", "arguments": "{}"}


def test_request_options_api_key_and_request_id_reach_the_server(fake: FakeServer) -> None:
    with Client(fake.target, api_key="sk-test") as client:
        client.complete(
            messages=USER,
            max_tokens=5,
            temperature=0.0,
            reasoning_effort="high",
            stop="END",
            request_id="my-id",
        )
    request, metadata = fake.servicer.requests[0], fake.servicer.metadata[0]
    assert metadata["authorization"] == "Bearer sk-test"
    assert metadata["x-request-id"] == "my-id"
    assert request.request_id == "my-id"
    assert request.max_tokens == 5 and request.HasField("temperature") and request.temperature == 0.0
    assert not request.HasField("top_p")  # unset options stay unset (server defaults apply)
    assert request.reasoning_effort == pb.REASONING_EFFORT_HIGH
    assert list(request.stop) == ["END"]


def test_a_ready_request_proto_is_sent_as_is(fake: FakeServer) -> None:
    proto = pb.GenerateRequest(messages=[pb.Message(role=pb.ROLE_USER, content="x")], max_tokens=3)
    with Client(fake.target) as client:
        client.complete(proto, request_id="override")
        with pytest.raises(TypeError, match="not both"):
            client.generate(proto, max_tokens=4)
    assert fake.servicer.requests[0].request_id == "override"
    assert fake.servicer.requests[0].max_tokens == 3
    assert proto.request_id == ""  # the caller's proto is not mutated


@pytest.mark.parametrize(
    ("failure", "error_type", "param"),
    [
        (
            Fail(
                grpc.StatusCode.INVALID_ARGUMENT, "too long", "CONTEXT_LENGTH_EXCEEDED", {"param": "messages"}
            ),
            ContextLengthExceededError,
            "messages",
        ),
        (
            Fail(grpc.StatusCode.INVALID_ARGUMENT, "bad top_p", "INVALID_REQUEST", {"param": "top_p"}),
            InvalidRequestError,
            "top_p",
        ),
        (
            Fail(grpc.StatusCode.NOT_FOUND, "no such model", "MODEL_NOT_FOUND", {"param": "model"}),
            NotFoundError,
            "model",
        ),
        (Fail(grpc.StatusCode.UNAUTHENTICATED, "bad key", "INVALID_API_KEY"), AuthenticationError, None),
        (Fail(grpc.StatusCode.INTERNAL, "boom", "ENGINE_DEAD"), ServerError, None),
    ],
)
def test_error_details_are_parsed(
    fake: FakeServer, failure: Fail, error_type: type[Exception], param: str | None
) -> None:
    fake.servicer.generate_script = [failure]
    with Client(fake.target) as client, pytest.raises(error_type) as info:
        client.complete(messages=USER, request_id="rid")
    error = info.value
    assert type(error) is error_type
    assert error.reason == failure.reason  # type: ignore[attr-defined]
    assert error.domain == "gptoss.v1"  # type: ignore[attr-defined]
    assert error.param == param  # type: ignore[attr-defined]
    assert error.message == failure.message  # type: ignore[attr-defined]
    assert error.request_id == "rid"  # type: ignore[attr-defined]


def test_garbled_details_fall_back_to_the_status_code(fake: FakeServer) -> None:
    fake.servicer.generate_script = [
        Fail(grpc.StatusCode.INVALID_ARGUMENT, "x", raw_details=b"\xff\x00garbage")
    ]
    with Client(fake.target) as client, pytest.raises(InvalidRequestError) as info:
        client.complete(messages=USER)
    assert type(info.value) is InvalidRequestError and info.value.reason is None


def test_unary_calls_and_their_retry(fake: FakeServer) -> None:
    fake.servicer.unary_failures = [UNAVAILABLE]
    with Client(fake.target, retry=FAST_RETRY) as client:
        info = client.model_info()
        count = client.count_tokens(messages=[{"role": "user", "content": "abcd"}])
    assert fake.servicer.unary_calls == 3  # one failed + model info, then count tokens
    assert info.model_id == "fake-model" and info.max_concurrent_requests == 3
    assert (count.prompt_tokens, count.max_context_length) == (14, 4096)


def test_health_liveness_and_readiness(fake: FakeServer) -> None:
    fake.set_readiness(False)
    with Client(fake.target) as client:
        assert client.health("") is ServingStatus.SERVING
        assert client.health() is ServingStatus.NOT_SERVING
        with pytest.raises(UnavailableError, match="not ready"):
            client.wait_until_ready(0.3, poll_s=0.05)
        fake.set_readiness(True)
        client.wait_until_ready(5)


def test_server_down_is_unavailable() -> None:
    with Client("127.0.0.1:1", retry=FAST_RETRY) as client, pytest.raises(UnavailableError):
        client.model_info(timeout=5)
