"""The sync and async clients against the fake server: events, retries, cancellation, deadlines, errors.

The fake pins sequences the real engine cannot be forced into (UNAVAILABLE before vs after the
first event, a stream that hangs until cancelled, exact error details).
"""

from __future__ import annotations

import asyncio
import threading
import time

import grpc
import pytest
from gptoss import (
    AsyncClient,
    AuthenticationError,
    Client,
    ContentDelta,
    ContextLengthExceededError,
    DeadlineExceededError,
    Done,
    FinishReason,
    InvalidRequestError,
    NotFoundError,
    OverloadedError,
    ReasoningDelta,
    ServerError,
    ServingStatus,
    ToolCall,
    ToolCallDelta,
    ToolCallDone,
    UnavailableError,
)
from gptoss.v1 import inference_pb2 as pb

from tests.clients.conftest import FAST_RETRY
from tests.clients.fake_service import Fail, FakeServer, Reply, content, done, reasoning, tool_call

USER = [{"role": "user", "content": "hi"}]
UNAVAILABLE = Fail(grpc.StatusCode.UNAVAILABLE, "engine starting", "ENGINE_STARTING", {"retry_after_s": "0"})


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


def test_unavailable_before_first_event_is_retried(fake: FakeServer) -> None:
    fake.servicer.generate_script = [UNAVAILABLE, UNAVAILABLE, Reply([content("ok"), done()])]
    with Client(fake.target, retry=FAST_RETRY) as client:
        assert client.complete(messages=USER).content == "ok"
    assert len(fake.servicer.requests) == 3


def test_retries_stop_after_max_attempts(fake: FakeServer) -> None:
    fake.servicer.generate_script = [UNAVAILABLE]
    with Client(fake.target, retry=FAST_RETRY) as client, pytest.raises(UnavailableError) as info:
        client.complete(messages=USER)
    assert len(fake.servicer.requests) == FAST_RETRY.max_attempts
    assert info.value.reason == "ENGINE_STARTING"
    assert info.value.retry_after_s == 0.0


def test_unavailable_after_first_event_is_not_retried(fake: FakeServer) -> None:
    fake.servicer.generate_script = [
        Reply([content("partial")], then=UNAVAILABLE),
        Reply([content("again"), done()]),
    ]
    seen = []
    with Client(fake.target, retry=FAST_RETRY) as client, pytest.raises(UnavailableError):
        for event in client.generate(messages=USER):
            seen.append(event)
    assert seen == [ContentDelta("partial")]
    assert len(fake.servicer.requests) == 1


def test_other_codes_are_not_retried(fake: FakeServer) -> None:
    fake.servicer.generate_script = [
        Fail(grpc.StatusCode.RESOURCE_EXHAUSTED, "busy", "OVERLOADED", {"retry_after_s": "1"})
    ]
    with Client(fake.target, retry=FAST_RETRY) as client, pytest.raises(OverloadedError) as info:
        client.complete(messages=USER)
    assert len(fake.servicer.requests) == 1
    assert info.value.retry_after_s == 1.0
    assert info.value.code is grpc.StatusCode.RESOURCE_EXHAUSTED


def test_closing_the_iterator_cancels_the_call(fake: FakeServer) -> None:
    fake.servicer.generate_script = [Reply([content("first")], hang=True)]
    with Client(fake.target) as client:
        stream = client.generate(messages=USER)
        assert next(stream) == ContentDelta("first")
        assert not fake.servicer.cancelled.is_set()
        stream.close()
        assert fake.servicer.cancelled.wait(5), "server never saw the cancellation"
        with pytest.raises(StopIteration):
            next(stream)


def test_cancel_from_another_thread_ends_the_readers_loop_quietly(fake: FakeServer) -> None:
    fake.servicer.generate_script = [Reply([content("first")], hang=True)]
    with Client(fake.target) as client:
        stream = client.generate(messages=USER)
        timer = threading.Timer(0.3, stream.cancel)
        timer.start()
        assert list(stream) == [ContentDelta("first")]  # no exception: the caller asked for it
        assert fake.servicer.cancelled.wait(5)


def test_deadline_becomes_a_typed_error(fake: FakeServer) -> None:
    fake.servicer.generate_script = [Reply([], hang=True)]
    with Client(fake.target) as client:
        started = time.monotonic()
        with pytest.raises(DeadlineExceededError) as info:
            client.complete(messages=USER, timeout=0.3)
    assert time.monotonic() - started < 3
    assert info.value.code is grpc.StatusCode.DEADLINE_EXCEEDED


def test_client_default_timeout_applies_to_every_call(fake: FakeServer) -> None:
    fake.servicer.generate_script = [Reply([], hang=True)]
    with Client(fake.target, timeout=0.2) as client, pytest.raises(DeadlineExceededError):
        client.complete(messages=USER)


def test_retries_share_one_deadline(fake: FakeServer) -> None:
    """With backoff longer than the time left, the client gives up instead of overrunning the deadline."""
    fake.servicer.generate_script = [
        Fail(grpc.StatusCode.UNAVAILABLE, "draining", "DRAINING", {"retry_after_s": "5"})
    ]
    started = time.monotonic()
    with Client(fake.target) as client, pytest.raises(UnavailableError):
        client.complete(messages=USER, timeout=1.0)
    assert time.monotonic() - started < 1.0
    assert len(fake.servicer.requests) == 1


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


# -- the async client: same behaviours through grpc.aio ---------------------------------------------


async def test_async_generate_and_complete(fake: FakeServer) -> None:
    fake.servicer.generate_script = [
        Reply([reasoning("r"), content("c"), *tool_call(0, "i", "f", "{}"), done()])
    ]
    async with AsyncClient(fake.target, api_key="k") as client:
        events = [event async for event in client.generate(messages=USER)]
        result = await client.complete(messages=USER)
        info = await client.model_info()
        count = await client.count_tokens(messages=USER)
        status = await client.health()
    assert events[0] == ReasoningDelta("r") and isinstance(events[-1], Done)
    assert (result.reasoning, result.content, result.tool_calls) == ("r", "c", (ToolCall("i", "f", "{}"),))
    assert info.model_id == "fake-model" and count.prompt_tokens == 12 and status is ServingStatus.SERVING
    assert fake.servicer.metadata[0]["authorization"] == "Bearer k"


async def test_async_retry_before_first_event_only(fake: FakeServer) -> None:
    fake.servicer.generate_script = [UNAVAILABLE, Reply([content("ok")], then=UNAVAILABLE), Reply([done()])]
    async with AsyncClient(fake.target, retry=FAST_RETRY) as client:
        seen = []
        with pytest.raises(UnavailableError):
            async for event in client.generate(messages=USER):
                seen.append(event)
    assert seen == [ContentDelta("ok")]
    assert len(fake.servicer.requests) == 2


async def test_async_aclose_cancels_the_call(fake: FakeServer) -> None:
    fake.servicer.generate_script = [Reply([content("first")], hang=True)]
    async with AsyncClient(fake.target) as client:
        stream = client.generate(messages=USER)
        assert await anext(stream) == ContentDelta("first")
        await stream.aclose()
        assert await asyncio.to_thread(fake.servicer.cancelled.wait, 5)


async def test_async_task_cancellation_cancels_the_call(fake: FakeServer) -> None:
    fake.servicer.generate_script = [Reply([content("first")], hang=True)]
    async with AsyncClient(fake.target) as client:

        async def consume() -> None:
            async with client.generate(messages=USER) as stream:
                async for _ in stream:
                    pass

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await asyncio.to_thread(fake.servicer.cancelled.wait, 5)


async def test_async_cancel_while_another_task_reads(fake: FakeServer) -> None:
    fake.servicer.generate_script = [Reply([content("first")], hang=True)]
    async with AsyncClient(fake.target) as client:
        stream = client.generate(messages=USER)
        asyncio.get_running_loop().call_later(0.3, stream.cancel)
        assert [event async for event in stream] == [ContentDelta("first")]
        assert await asyncio.to_thread(fake.servicer.cancelled.wait, 5)


async def test_async_deadline_and_details(fake: FakeServer) -> None:
    fake.servicer.generate_script = [Reply([], hang=True)]
    async with AsyncClient(fake.target) as client:
        with pytest.raises(DeadlineExceededError):
            await client.complete(messages=USER, timeout=0.3)
        fake.servicer.generate_script = [
            Fail(
                grpc.StatusCode.INVALID_ARGUMENT,
                "too long",
                "CONTEXT_LENGTH_EXCEEDED",
                {"param": "max_tokens"},
            )
        ]
        with pytest.raises(ContextLengthExceededError) as info:
            await client.complete(messages=USER)
    assert info.value.param == "max_tokens"
