"""The async client against the fake server: the sync client's behaviours (events, retries,
cancellation, deadlines, error details) through grpc.aio."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from gptoss import (
    AsyncClient,
    ContentDelta,
    ContextLengthExceededError,
    DeadlineExceededError,
    Done,
    ReasoningDelta,
    ServingStatus,
    ToolCall,
    UnavailableError,
)

from tests.clients.conftest import FAST_RETRY, UNAVAILABLE, USER
from tests.clients.fake_service import Fail, FakeServer, Reply, content, done, reasoning, tool_call


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
