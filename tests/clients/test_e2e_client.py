"""The typed client against the real server and vLLM engine (harmony-tiny: assert structure, not text)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import pytest
from gptoss import (
    AsyncClient,
    Client,
    ContentDelta,
    ContextLengthExceededError,
    DeadlineExceededError,
    Done,
    FinishReason,
    InvalidRequestError,
    NotFoundError,
    ReasoningDelta,
    ServingStatus,
    ToolCallDelta,
    ToolCallDone,
)

from tests.support.server_thread import ServerThread

pytestmark = pytest.mark.engine

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hi"}]
TEXT_EVENTS = (ReasoningDelta, ContentDelta, ToolCallDelta, ToolCallDone)


def wait_for(predicate: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_sync_client_round_trip(live_server: ServerThread) -> None:
    with Client(live_server.target, timeout=120) as client:
        assert client.health("") is ServingStatus.SERVING
        assert client.health() is ServingStatus.SERVING
        info = client.model_info()
        count = client.count_tokens(messages=MESSAGES, reasoning_effort="low")
        events = list(
            client.generate(messages=MESSAGES, reasoning_effort="low", max_tokens=12, request_id="e2e-sync-1")
        )
    assert info.model_id == live_server.settings.model_id
    assert info.max_context_length == live_server.settings.max_model_len == count.max_context_length
    assert (
        info.engine_version and info.max_concurrent_requests == live_server.settings.max_concurrent_requests
    )
    done = events[-1]
    assert isinstance(done, Done)
    assert all(isinstance(e, TEXT_EVENTS) for e in events[:-1])  # exactly one Done, and it is last
    assert done.request_id == "e2e-sync-1"
    assert done.finish_reason in (FinishReason.STOP, FinishReason.LENGTH)
    assert done.usage.prompt_tokens == count.prompt_tokens  # CountTokens renders like Generate
    assert 0 < done.usage.completion_tokens <= 12
    t = done.timings
    assert t.time_to_first_token_s is not None and t.total_s is not None
    assert 0 <= t.time_to_first_token_s <= t.total_s


def test_complete_matches_its_events(live_server: ServerThread) -> None:
    """Greedy decoding twice: complete() must equal folding the streamed events by hand."""
    options = {"messages": MESSAGES, "max_tokens": 16, "temperature": 0.0, "seed": 7}
    with Client(live_server.target, timeout=120) as client:
        events = list(client.generate(**options))  # type: ignore[arg-type]
        result = client.complete(**options)  # type: ignore[arg-type]
    assert result.content == "".join(e.text for e in events if isinstance(e, ContentDelta))
    assert result.reasoning == "".join(e.text for e in events if isinstance(e, ReasoningDelta))
    done = events[-1]
    assert isinstance(done, Done)
    assert (result.finish_reason, result.usage) == (done.finish_reason, done.usage)


def test_server_errors_are_typed(live_server: ServerThread) -> None:
    with Client(live_server.target, timeout=60) as client:
        with pytest.raises(NotFoundError) as not_found:
            client.complete(messages=MESSAGES, model="no-such-model")
        with pytest.raises(InvalidRequestError) as bad:
            client.complete(messages=MESSAGES, top_p=5.0)
        too_long = [{"role": "user", "content": "word " * (live_server.settings.max_model_len + 100)}]
        with pytest.raises(ContextLengthExceededError) as long:
            client.complete(messages=too_long)
        with pytest.raises(DeadlineExceededError):
            client.complete(messages=MESSAGES, timeout=0.001)
    assert (not_found.value.reason, not_found.value.param) == ("MODEL_NOT_FOUND", "model")
    assert (bad.value.reason, bad.value.param) == ("INVALID_REQUEST", "top_p")
    assert long.value.reason == "CONTEXT_LENGTH_EXCEEDED" and long.value.domain == "gptoss.v1"


def test_sync_cancel_reaches_the_engine(live_server: ServerThread) -> None:
    """A long generation cancelled from another thread is aborted in vLLM, not left running."""
    engine = live_server.engine
    with Client(live_server.target) as client:
        stream = client.generate(messages=MESSAGES, max_tokens=3000, ignore_eos=True)
        seen: list[object] = []
        reader = threading.Thread(target=lambda: seen.extend(stream))
        reader.start()
        assert wait_for(lambda: engine.num_unfinished_requests() == 1), "generation never reached the engine"
        stream.cancel()
        reader.join(30)
        assert not reader.is_alive()
        assert wait_for(lambda: engine.num_unfinished_requests() == 0), (
            "engine still runs the cancelled request"
        )
    assert not any(isinstance(e, Done) for e in seen)


async def test_async_client_and_task_cancellation(live_server: ServerThread) -> None:
    engine = live_server.engine
    async with AsyncClient(live_server.target, timeout=120) as client:
        result = await client.complete(messages=MESSAGES, max_tokens=8)
        assert 0 < result.usage.completion_tokens <= 8
        assert (await client.model_info()).model_id == live_server.settings.model_id

        async def consume() -> None:
            async with client.generate(messages=MESSAGES, max_tokens=3000, ignore_eos=True) as stream:
                async for _ in stream:
                    pass

        task = asyncio.create_task(consume())
        assert await asyncio.to_thread(wait_for, lambda: engine.num_unfinished_requests() == 1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await asyncio.to_thread(wait_for, lambda: engine.num_unfinished_requests() == 0)
