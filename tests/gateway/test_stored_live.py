"""The stateful Responses API on the product path: gateway -> real gRPC service (Harmony render
and parse) -> the real vLLM CPU engine, or a scripted engine where the turn must be an exact tool
call (the weather script: call the tool unless its result is in the prompt, then answer)."""

from __future__ import annotations

from collections.abc import Callable

import openai
import pytest

from tests.gateway.test_gateway_scripted import ANSWER, ARGS, RESPONSES_TOOLS, toks, weather_script
from tests.support.gateway_thread import GatewayThread
from tests.support.server_thread import ServerThread


@pytest.fixture
def weather_gateway(
    scripted_server: Callable[..., ServerThread], start_gateway: Callable[..., GatewayThread]
) -> tuple[GatewayThread, str]:
    server = scripted_server(weather_script)
    return start_gateway([server.target]), server.settings.model_id


def test_three_turn_chain_with_a_function_call_round_trip(weather_gateway: tuple[GatewayThread, str]) -> None:
    gateway, model = weather_gateway
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key="x", max_retries=0)
    first = client.responses.create(model=model, input="Weather in Oslo?", tools=RESPONSES_TOOLS)
    call = next(item for item in first.output if item.type == "function_call")
    assert (call.name, call.arguments) == ("get_weather", ARGS)
    second = client.responses.create(
        model=model,
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": '{"temp_c": 3}'}],
        tools=RESPONSES_TOOLS,
    )
    assert second.output_text == "It is 3 C in Oslo."  # the script saw the stored call and its result
    third = client.responses.create(
        model=model, previous_response_id=second.id, input="Thanks!", tools=RESPONSES_TOOLS
    )
    assert third.output_text == "It is 3 C in Oslo."  # still in the history two turns later
    assert third.usage is not None and second.usage is not None
    # The answer joined the history; Harmony dropped turn one's reasoning (a final answer followed).
    assert third.usage.input_tokens > second.usage.input_tokens + len(toks(ANSWER)) - 8
    assert client.responses.retrieve(third.id).previous_response_id == second.id
    assert [i.type for i in client.responses.input_items.list(second.id).data] == ["function_call_output"]


async def test_openai_agents_runner_chains_with_previous_response_id(
    weather_gateway: tuple[GatewayThread, str],
) -> None:
    from agents import Agent, OpenAIResponsesModel, Runner, function_tool, set_tracing_disabled

    gateway, model = weather_gateway
    client = openai.AsyncOpenAI(base_url=gateway.url + "/v1", api_key="x", max_retries=0)
    set_tracing_disabled(True)

    @function_tool
    def get_weather(city: str) -> str:
        """Current weather for a city."""
        return '{"temp_c": 3}'

    agent = Agent(
        name="weather",
        instructions="Answer briefly.",
        model=OpenAIResponsesModel(model=model, openai_client=client),
        tools=[get_weather],
    )
    first = await Runner.run(agent, "Weather in Oslo?")  # tool call, tool result, answer
    assert first.final_output == "It is 3 C in Oslo." and first.last_response_id is not None
    second = await Runner.run(agent, "And tomorrow?", previous_response_id=first.last_response_id)
    # Only the chain's stored history holds the tool result: the script answers instead of calling.
    assert second.final_output == "It is 3 C in Oslo."
    assert second.last_response_id is not None
    stored = await client.responses.retrieve(second.last_response_id)
    assert stored.previous_response_id == first.last_response_id


def test_real_engine_chain(client: openai.OpenAI, model_id: str) -> None:
    """Three turns on the real engine: each prompt holds the earlier turns (input tokens grow)."""
    turns = []
    previous: str | None = None
    for text in ("My name is Ada.", "I live in Oslo.", "What is my name?"):
        response = client.responses.create(
            model=model_id, input=text, previous_response_id=previous, max_output_tokens=8
        )
        assert response.store is True and response.status in ("completed", "incomplete")
        turns.append(response)
        previous = response.id
    tokens = [t.usage.input_tokens for t in turns if t.usage is not None]
    assert tokens == sorted(tokens) and tokens[-1] > tokens[0] + 8
    assert client.responses.retrieve(turns[-1].id).output_text == turns[-1].output_text
