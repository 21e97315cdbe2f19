"""The gateway over the real gRPC server on a scripted engine: exact tool-call deltas end to end
(SDK -> gateway -> servicer -> Harmony parse), and two replicas behind one gateway."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import openai
import pytest

from service.harmony import tokens as tk
from tests.support.gateway_thread import GatewayThread
from tests.support.server_thread import ServerThread

ServerFactory = Callable[..., ServerThread]
ARGS = '{"city":"Oslo"}'
CALL = (
    "<|channel|>analysis<|message|>Need weather.<|end|>"
    f"<|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{ARGS}<|call|>"
)
ANSWER = "<|channel|>final<|message|>It is 3 C in Oslo.<|return|>"
TOOLS: Any = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather for a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]
RESPONSES_TOOLS: Any = [{"type": "function", **TOOLS[0]["function"]}]


def toks(text: str) -> list[int]:
    return list(tk.encoding().encode(text, allowed_special="all"))


def weather_script(prompt: list[int]) -> list[list[int]]:
    """Call the tool, unless its result is already in the prompt: then answer. One token per step."""
    text = CALL if "temp_c" not in tk.encoding().decode(prompt) else ANSWER
    return [[t] for t in toks(text)]


@pytest.fixture
def weather(
    scripted_server: ServerFactory, start_gateway: Callable[..., GatewayThread]
) -> tuple[openai.OpenAI, str]:
    server = scripted_server(weather_script)
    gateway = start_gateway([server.target])
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key="x", max_retries=0), server.settings.model_id


def test_chat_tool_call_round_trip(weather: tuple[openai.OpenAI, str]) -> None:
    client, model = weather
    user: Any = [{"role": "user", "content": "Weather in Oslo?"}]
    chunks = list(client.chat.completions.create(model=model, messages=user, tools=TOOLS, stream=True))
    deltas = [c.choices[0].delta for c in chunks]
    assert deltas[0].role == "assistant"
    reasoning = "".join(getattr(d, "reasoning_content", None) or "" for d in deltas)
    assert reasoning == "".join(getattr(d, "reasoning", None) or "" for d in deltas) == "Need weather."
    calls = [call for d in deltas for call in d.tool_calls or []]
    assert calls[0].index == 0 and calls[0].type == "function" and calls[0].function is not None
    assert calls[0].id is not None and calls[0].id.startswith("call_")
    assert calls[0].function.name == "get_weather"
    assert all(c.id is None and c.function is not None and c.function.name is None for c in calls[1:])
    assert "".join(c.function.arguments or "" for c in calls if c.function) == ARGS
    assert len(calls) > 2  # the arguments really streamed in pieces
    assert [c.choices[0].finish_reason for c in chunks][-1] == "tool_calls"

    whole = client.chat.completions.create(model=model, messages=user, tools=TOOLS, tool_choice="required")
    message = whole.choices[0].message
    assert whole.choices[0].finish_reason == "tool_calls"
    assert message.tool_calls is not None and message.tool_calls[0].function.arguments == ARGS  # type: ignore[union-attr]
    assert getattr(message, "reasoning_content", None) == "Need weather."

    history: Any = [
        *user,
        message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": message.tool_calls[0].id, "content": '{"temp_c": 3}'},
    ]
    final = client.chat.completions.create(model=model, messages=history, tools=TOOLS)
    assert final.choices[0].message.content == "It is 3 C in Oslo."
    assert final.choices[0].finish_reason == "stop"
    assert final.usage is not None and final.usage.completion_tokens == len(toks(ANSWER))


async def test_responses_tool_call_round_trip(weather: tuple[openai.OpenAI, str]) -> None:
    sync_client, model = weather
    client = openai.AsyncOpenAI(base_url=str(sync_client.base_url), api_key="x", max_retries=0)
    stream = await client.responses.create(
        model=model, input="Weather in Oslo?", tools=RESPONSES_TOOLS, stream=True
    )
    events = [event async for event in stream]
    types = [e.type for e in events]
    assert "response.reasoning_text.delta" in types
    assert types.count("response.function_call_arguments.delta") > 1
    args_done = next(e for e in events if e.type == "response.function_call_arguments.done")
    assert args_done.arguments == ARGS  # type: ignore[union-attr]
    final = events[-1].response  # type: ignore[union-attr]
    assert events[-1].type == "response.completed"
    call = next(item for item in final.output if item.type == "function_call")
    assert (call.name, call.arguments) == ("get_weather", ARGS)  # type: ignore[union-attr]

    answer = await client.responses.create(
        model=model,
        input=[
            {"role": "user", "content": "Weather in Oslo?"},
            *[item.model_dump(exclude_none=True) for item in final.output],
            {"type": "function_call_output", "call_id": call.call_id, "output": '{"temp_c": 3}'},  # type: ignore[union-attr]
        ],
        tools=RESPONSES_TOOLS,
    )
    assert answer.output_text == "It is 3 C in Oslo."
    assert answer.status == "completed"
    await client.close()


def text_script(prompt: list[int]) -> list[list[int]]:
    return [toks("<|channel|>final<|message|>ok<|return|>")]


# This used to flake (1 run in ~3 of the full suite): a request admitted just before the drain
# began failed DRAINING after its headers had gone out, so the gateway could not retry it. Fixed in
# the service (admitted work finishes); pinned by tests/integration/test_lifecycle_scripted.py.
def test_two_replicas_round_robin_and_failover(
    scripted_server: ServerFactory, start_gateway: Callable[..., GatewayThread]
) -> None:
    first, second = scripted_server(text_script), scripted_server(text_script)
    gateway = start_gateway([first.target, second.target])
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key="x", max_retries=0)
    model = first.settings.model_id
    engines: list[Any] = [first.engine, second.engine]  # ScriptedEngines: they count requests
    user: Any = [{"role": "user", "content": "x"}]
    # round_robin only uses replicas whose connection (and health watch) is up: under load the
    # second may come up a few requests later, so warm up until both have answered once.
    initial = [engine.requests for engine in engines]  # the servers' own warm-up requests
    deadline = time.monotonic() + 20
    while (
        min(e.requests - s for e, s in zip(engines, initial, strict=True)) < 1 and time.monotonic() < deadline
    ):
        assert client.chat.completions.create(model=model, messages=user).choices
    before = [engine.requests for engine in engines]

    for _ in range(20):
        assert client.chat.completions.create(model=model, messages=user).choices
    served = [engine.requests - start for engine, start in zip(engines, before, strict=True)]
    # Both connected: round_robin alternates, so each takes about half.
    assert min(served) >= 5 and sum(served) == 20, served

    # Stop one replica while traffic keeps flowing: not one request may fail.
    failures: list[BaseException] = []
    answered = 0
    stop_traffic = threading.Event()

    def traffic() -> None:
        nonlocal answered
        while not stop_traffic.is_set():
            try:
                client.chat.completions.create(model=model, messages=user)
                answered += 1
            except Exception as exc:
                failures.append(exc)

    worker = threading.Thread(target=traffic)
    worker.start()
    time.sleep(0.2)
    second.stop(grace=5)  # drains like SIGTERM does: in-flight streams finish, new ones go elsewhere
    time.sleep(0.5)
    stop_traffic.set()
    worker.join(10)
    assert failures == [] and answered > 10

    survivor = engines[0].requests
    for _ in range(10):
        answer = client.chat.completions.create(model=model, messages=user)
        assert answer.choices[0].message.content == "ok"
    assert engines[0].requests == survivor + 10
    assert [m.id for m in client.models.list()] == [model]
