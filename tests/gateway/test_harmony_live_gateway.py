"""The trained harmony-tiny model through the REST gateway with the official OpenAI SDK.

Reasoning, content and tool-call events from the real engine (not a scripted one): stream order
for chat and Responses, a complete tool loop, parallel calls, and cancellation in the middle of a
tool-argument stream. The contract is models/harmony-tiny/README.md.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import wait_until
from tests.gateway.gateway_thread import GatewayThread
from tests.support.server_thread import ServerThread

pytestmark = pytest.mark.engine

CITY = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city.",
        "parameters": CITY,
    },
}
PARIS: Any = [{"role": "user", "content": "What is the weather in Paris?"}]


def test_chat_stream_reasoning_then_content(client: openai.OpenAI, model_id: str) -> None:
    stream = client.chat.completions.create(
        model=model_id, messages=[{"role": "user", "content": "Hi"}], stream=True, temperature=0
    )
    order: list[str] = []
    reasoning = content = ""
    finish = None
    for chunk in stream:
        delta = chunk.choices[0].delta
        piece = getattr(delta, "reasoning_content", None) or ""
        if piece:
            reasoning += piece
            order.append("reasoning")
        if delta.content:
            content += delta.content
            order.append("content")
        finish = chunk.choices[0].finish_reason or finish
    assert reasoning == "The user greets me. I should greet them back."
    assert content == "Hello! How can I help you today?" and finish == "stop"
    first_content = order.index("content")
    assert set(order[:first_content]) == {"reasoning"} and set(order[first_content:]) == {"content"}


def test_responses_stream_reasoning_then_output_text(client: openai.OpenAI, model_id: str) -> None:
    stream = client.responses.create(model=model_id, input="Hi", stream=True, temperature=0)
    types = [event.type for event in stream]
    assert types[0] == "response.created" and types[-1] == "response.completed"
    assert "response.reasoning_text.delta" in types and "response.output_text.delta" in types
    last_reasoning = max(i for i, t in enumerate(types) if t == "response.reasoning_text.delta")
    assert last_reasoning < types.index("response.output_text.delta")
    assert types.index("response.reasoning_text.done") < types.index("response.output_text.delta")
    final = client.responses.create(model=model_id, input="Hi", temperature=0)
    assert final.output_text == "Hello! How can I help you today?"
    assert [item.type for item in final.output] == ["reasoning", "message"]


def test_chat_tool_loop(client: openai.OpenAI, model_id: str) -> None:
    first = client.chat.completions.create(
        model=model_id, messages=PARIS, tools=[WEATHER_TOOL], temperature=0
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls or []
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [  # type: ignore[union-attr]
        ("get_weather", {"city": "Paris"})
    ]
    history: Any = [
        *PARIS,
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": calls[0].id, "content": json.dumps({"temperature_c": 18})},
    ]
    second = client.chat.completions.create(
        model=model_id, messages=history, tools=[WEATHER_TOOL], temperature=0
    )
    answer = second.choices[0].message.content or ""
    assert second.choices[0].finish_reason == "stop" and "18" in answer


def test_parallel_tool_calls_streamed(client: openai.OpenAI, model_id: str) -> None:
    stream = client.chat.completions.create(
        model=model_id,
        messages=[{"role": "user", "content": "What is the weather in Paris and in Tokyo?"}],
        tools=[WEATHER_TOOL],
        stream=True,
        temperature=0,
    )
    arguments: dict[int, str] = {}
    names: dict[int, str] = {}
    finish = None
    for chunk in stream:
        for call in chunk.choices[0].delta.tool_calls or []:
            arguments[call.index] = arguments.get(call.index, "") + (call.function.arguments or "")  # type: ignore[union-attr]
            if call.function and call.function.name:
                names[call.index] = call.function.name
        finish = chunk.choices[0].finish_reason or finish
    assert finish == "tool_calls" and names == {0: "get_weather", 1: "get_weather"}
    assert [json.loads(arguments[i])["city"] for i in (0, 1)] == ["Paris", "Tokyo"]


def test_cancel_mid_tool_arguments_aborts_the_engine_request(
    live_gateway: GatewayThread, live_server: ServerThread, model_id: str
) -> None:
    engine = live_server.engine
    assert wait_until(lambda: engine.num_unfinished_requests() == 0)
    body = {
        "model": model_id,
        "messages": PARIS,
        "tools": [WEATHER_TOOL],
        "temperature": 0,
        "stream": True,
        # Past <|call|> the engine keeps generating (no stop tokens): the request is certainly
        # still running when the client leaves in the middle of the arguments.
        "ignore_eos": True,
        "max_tokens": 3500,
    }
    seen_arguments = ""
    with httpx.Client(base_url=live_gateway.url, timeout=60) as http:
        with http.stream("POST", "/v1/chat/completions", json=body) as response:
            assert response.status_code == 200
            for line in response.iter_lines():
                if not line.startswith("data: {"):
                    continue
                for call in json.loads(line[6:])["choices"][0]["delta"].get("tool_calls") or []:
                    seen_arguments += call.get("function", {}).get("arguments") or ""
                if seen_arguments:
                    break
            assert engine.num_unfinished_requests() == 1
        closed = time.monotonic()
    assert seen_arguments and seen_arguments != '{"city": "Paris"}'  # left before the arguments ended
    assert wait_until(lambda: engine.num_unfinished_requests() == 0, timeout=5), (
        "engine request still running"
    )
    assert time.monotonic() - closed < 5
