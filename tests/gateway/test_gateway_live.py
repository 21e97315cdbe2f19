"""The official openai SDK, sync and async, through the gateway to the real service and vLLM CPU engine.

Assertions are on structure; the trained model's text is pinned in test_harmony_live_gateway.py.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import wait_until
from tests.gateway.gateway_thread import GatewayThread
from tests.support.server_thread import ServerThread

pytestmark = pytest.mark.engine

USER = [{"role": "user", "content": "Say hello."}]
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def check_usage(usage: Any, max_completion: int) -> None:
    assert usage.prompt_tokens > 0
    assert 1 <= usage.completion_tokens <= max_completion
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.completion_tokens_details.reasoning_tokens >= 0
    assert usage.prompt_tokens_details.cached_tokens >= 0


def test_chat_completion(client: openai.OpenAI, model_id: str) -> None:
    answer = client.chat.completions.create(
        model=model_id,
        messages=USER,
        max_tokens=8,
        temperature=0.7,
        top_p=0.9,
        seed=7,
        presence_penalty=0.5,
        frequency_penalty=0.5,
        stop=["\n\n"],
        reasoning_effort="low",
    )
    assert (
        answer.id.startswith("chatcmpl-") and answer.object == "chat.completion" and answer.model == model_id
    )
    choice = answer.choices[0]
    assert choice.message.role == "assistant"
    assert choice.finish_reason in ("stop", "length")
    assert answer.usage is not None
    check_usage(answer.usage, 8)
    if choice.finish_reason == "length":
        assert answer.usage.completion_tokens == 8


def test_chat_stream_with_usage(client: openai.OpenAI, model_id: str) -> None:
    chunks = list(
        client.chat.completions.create(
            model=model_id,
            messages=USER,
            max_completion_tokens=8,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    assert len({c.id for c in chunks}) == 1
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finishes) == 1 and finishes[0] in ("stop", "length")
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    check_usage(chunks[-1].usage, 8)
    assert all(c.usage is None for c in chunks[:-1])


async def test_async_chat(async_client: openai.AsyncOpenAI, model_id: str) -> None:
    whole, stream = await asyncio.gather(
        async_client.chat.completions.create(model=model_id, messages=USER, max_tokens=6),
        async_client.chat.completions.create(model=model_id, messages=USER, max_tokens=6, stream=True),
    )
    assert whole.usage is not None and whole.choices[0].finish_reason in ("stop", "length")
    chunks = [chunk async for chunk in stream]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")


def test_responses(client: openai.OpenAI, model_id: str) -> None:
    response = client.responses.create(
        model=model_id,
        input="Say hello.",
        instructions="Be brief.",
        max_output_tokens=8,
        reasoning={"effort": "low"},
    )
    assert response.id.startswith("resp_") and response.object == "response"
    assert response.status in ("completed", "incomplete")
    if response.status == "incomplete":
        assert (
            response.incomplete_details is not None
            and response.incomplete_details.reason == "max_output_tokens"
        )
    assert response.usage is not None
    assert 1 <= response.usage.output_tokens <= 8
    assert response.usage.output_tokens_details.reasoning_tokens >= 0
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens
    assert isinstance(response.output_text, str)


async def test_responses_stream_async(async_client: openai.AsyncOpenAI, model_id: str) -> None:
    stream = await async_client.responses.create(
        model=model_id, input="Say hello.", max_output_tokens=8, stream=True
    )
    events = [event async for event in stream]
    types = [e.type for e in events]
    assert types[:2] == ["response.created", "response.in_progress"]
    assert types[-1] in ("response.completed", "response.incomplete")
    assert [e.sequence_number for e in events] == list(range(len(events)))
    final = events[-1].response  # type: ignore[union-attr]
    assert final.usage is not None and 1 <= final.usage.output_tokens <= 8
    assert (
        types.count("response.output_item.added")
        == types.count("response.output_item.done")
        == len(final.output)
    )


def test_models(client: openai.OpenAI, model_id: str) -> None:
    assert [m.id for m in client.models.list()] == [model_id]
    assert client.models.retrieve(model_id).id == model_id
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("not-a-model")


def test_tool_call_round_trip_history(client: openai.OpenAI, model_id: str) -> None:
    """A whole tool round trip in history, as an app sends it back; the exact deltas of a
    call are pinned with the scripted engine (test_gateway_scripted.py)."""
    messages: Any = [
        {"role": "user", "content": "Weather in Oslo?"},
        {
            "role": "assistant",
            "content": None,
            "reasoning_content": "I should call the tool.",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp_c": 3}'},
    ]
    for choice in ("auto", "required", {"type": "function", "function": {"name": "get_weather"}}):
        answer = client.chat.completions.create(
            model=model_id, messages=messages, tools=[WEATHER_TOOL], tool_choice=choice, max_tokens=8
        )
        assert answer.choices[0].finish_reason in ("stop", "length", "tool_calls")
    response = client.responses.create(
        model=model_id,
        input=[
            {"role": "user", "content": "Weather in Oslo?"},
            {
                "type": "function_call",
                "call_id": "call_1",
                "name": "get_weather",
                "arguments": '{"city":"Oslo"}',
            },
            {"type": "function_call_output", "call_id": "call_1", "output": '{"temp_c": 3}'},
        ],
        tools=[
            {"type": "function", "name": "get_weather", "parameters": WEATHER_TOOL["function"]["parameters"]}
        ],
        max_output_tokens=8,
    )
    assert response.status in ("completed", "incomplete")


def test_ops_endpoints(live_gateway: GatewayThread) -> None:
    assert httpx.get(live_gateway.url + "/health").json() == {"status": "ok"}
    assert httpx.get(live_gateway.url + "/ready").json() == {"status": "ready"}
    assert "gptoss_gateway_requests_total" in httpx.get(live_gateway.url + "/metrics").text


def test_disconnect_cancels_the_engine_request(
    live_gateway: GatewayThread, live_server: ServerThread, model_id: str
) -> None:
    engine = live_server.engine
    assert wait_until(lambda: engine.num_unfinished_requests() == 0)
    body = {
        "model": model_id,
        "messages": USER,
        "max_tokens": 3500,  # ~25 s on the CPU engine: far longer than the cancellation may take
        # Without it the model ends its answer with <|return|> after a few dozen tokens and the
        # request could end before it is ever seen running.
        "ignore_eos": True,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    with httpx.Client(base_url=live_gateway.url, timeout=60) as http:
        with http.stream("POST", "/v1/chat/completions", json=body) as response:
            assert response.status_code == 200
            # Keep the iterator: `next(response.iter_lines())` drops it at once, and closing that
            # generator closes the stream, i.e. disconnects before the check below (the old flake:
            # the test then only passed when it caught the request before the abort landed).
            lines = response.iter_lines()
            next(lines)  # the role chunk (sent at the latest after the commit timeout)
            # The stream is committed after at most 1 s, possibly before the request reaches the
            # engine; what matters here is that the running request is aborted on disconnect.
            assert wait_until(lambda: engine.num_unfinished_requests() == 1, timeout=30), (
                f"engine requests: {engine.num_unfinished_requests()}, service streams: "
                f"{live_server.service.state.active_streams if live_server.service else None}"
            )
            time.sleep(0.5)  # still connected: the request must keep running
            assert engine.num_unfinished_requests() == 1, "cancelled while the client is still connected"
        closed = time.monotonic()
    assert wait_until(lambda: engine.num_unfinished_requests() == 0, timeout=5), (
        "engine request still running"
    )
    assert time.monotonic() - closed < 5


def test_gateway_timeout_is_504_and_aborts_the_engine_request(
    start_gateway: Callable[..., GatewayThread], live_server: ServerThread, model_id: str
) -> None:
    engine = live_server.engine
    assert wait_until(lambda: engine.num_unfinished_requests() == 0)
    gateway = start_gateway([live_server.target], request_timeout=1.0)
    body = {"model": model_id, "messages": USER, "max_tokens": 3500, "ignore_eos": True}
    started = time.monotonic()
    response = httpx.post(gateway.url + "/v1/chat/completions", json=body, timeout=30)
    assert response.status_code == 504, response.text
    assert response.json()["error"]["message"]
    assert time.monotonic() - started < 10
    assert wait_until(lambda: engine.num_unfinished_requests() == 0, timeout=10), (
        "engine request still running"
    )
