"""Structured output end to end: OpenAI SDK, LangChain and openai-agents through the gateway to the
real service and vLLM CPU engine (harmony-tiny), sampled at temperature 1.0 so only the grammar
can make the answers valid. Reasoning is capped (extension field max_reasoning_tokens) so every
request ends with its structured part well within max_tokens."""

from __future__ import annotations

import json
from typing import Any, Literal

import httpx
import jsonschema
import openai
import pytest
from agents import Agent, ModelSettings, OpenAIChatCompletionsModel, Runner, set_tracing_disabled
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, Field

from tests.gateway.gateway_thread import GatewayThread

pytestmark = pytest.mark.engine

BUDGET = {"max_reasoning_tokens": 48}  # sent as extra_body: an extension of the OpenAI body
MAX_TOKENS = 400


class City(BaseModel):
    """Bounded fields (enum, integer range, short string): random sampling cannot run them long."""

    name: Literal["Paris", "Tokyo", "Oslo"]
    population_millions: int = Field(ge=0, le=40)
    capital: bool
    nickname: str = Field(max_length=16)


CITY_SCHEMA = {"type": "string", "maxLength": 24}
TOOLS: Any = [
    {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {"type": "object", "properties": {"city": CITY_SCHEMA}, "required": ["city"]},
        },
    }
    for name, description in (
        ("get_weather", "Get the current weather in a city."),
        ("get_time", "Get the local time in a city."),
    )
]
PARAMETERS = {tool["function"]["name"]: tool["function"]["parameters"] for tool in TOOLS}
ASK = [{"role": "user", "content": "Tell me about a city."}]


def test_chat_completions_parse_returns_the_model(client: openai.OpenAI, model_id: str) -> None:
    for _ in range(3):
        completion = client.chat.completions.parse(
            model=model_id,
            messages=ASK,  # type: ignore[arg-type]
            response_format=City,
            temperature=1.0,
            max_completion_tokens=MAX_TOKENS,
            extra_body=BUDGET,
        )
        message = completion.choices[0].message
        assert completion.choices[0].finish_reason == "stop"
        assert isinstance(message.parsed, City), message.content


def test_responses_parse_returns_the_model(client: openai.OpenAI, model_id: str) -> None:
    response = client.responses.parse(
        model=model_id,
        input="Tell me about a city.",
        text_format=City,
        temperature=1.0,
        max_output_tokens=MAX_TOKENS,
        extra_body=BUDGET,
    )
    assert isinstance(response.output_parsed, City), response.output_text
    assert response.text is not None and response.text.format is not None
    assert response.text.format.type == "json_schema"  # the format is echoed (and stored)


def test_langchain_with_structured_output(live_gateway: GatewayThread, model_id: str) -> None:
    llm = ChatOpenAI(
        model=model_id,
        base_url=live_gateway.url + "/v1",
        api_key="unused",  # type: ignore[arg-type]
        temperature=1.0,
        max_completion_tokens=MAX_TOKENS,
        max_retries=0,
        extra_body=BUDGET,
    )
    city = llm.with_structured_output(City).invoke("Tell me about a city.")
    assert isinstance(city, City)


async def test_agents_output_type(async_client: openai.AsyncOpenAI, model_id: str) -> None:
    set_tracing_disabled(True)  # no network: traces would go to OpenAI
    agent = Agent(
        name="cities",
        output_type=City,
        model=OpenAIChatCompletionsModel(model=model_id, openai_client=async_client),
        model_settings=ModelSettings(temperature=1.0, max_tokens=MAX_TOKENS, extra_body=BUDGET),
    )
    result = await Runner.run(agent, "Tell me about a city.", max_turns=1)
    assert isinstance(result.final_output, City)


def test_required_tool_choice_always_calls_a_tool_with_valid_arguments(
    client: openai.OpenAI, model_id: str
) -> None:
    called: set[str] = set()
    for _ in range(20):
        completion = client.chat.completions.create(
            model=model_id,
            messages=ASK,  # type: ignore[arg-type]
            tools=TOOLS,
            tool_choice="required",
            temperature=1.0,
            max_tokens=MAX_TOKENS,
            extra_body=BUDGET,
        )
        choice = completion.choices[0]
        assert choice.finish_reason == "tool_calls", choice.message
        for call in choice.message.tool_calls or []:
            assert call.type == "function"
            jsonschema.validate(json.loads(call.function.arguments), PARAMETERS[call.function.name])
            called.add(call.function.name)
    assert called  # at least one call each time, and only the two tools


def test_named_tool_choice_calls_that_tool(client: openai.OpenAI, model_id: str) -> None:
    for _ in range(5):
        completion = client.chat.completions.create(
            model=model_id,
            messages=[{"role": "user", "content": "What is the weather in Paris?"}],
            tools=TOOLS,
            tool_choice={"type": "function", "function": {"name": "get_time"}},
            temperature=1.0,
            max_tokens=MAX_TOKENS,
            extra_body=BUDGET,
        )
        calls = completion.choices[0].message.tool_calls or []
        assert completion.choices[0].finish_reason == "tool_calls" and calls
        assert {call.function.name for call in calls} == {"get_time"}  # type: ignore[union-attr]
        for call in calls:
            jsonschema.validate(json.loads(call.function.arguments), PARAMETERS["get_time"])  # type: ignore[union-attr]


def test_streaming_json_schema_streams_reasoning_then_json(client: openai.OpenAI, model_id: str) -> None:
    schema = City.model_json_schema()
    stream = client.chat.completions.create(
        model=model_id,
        messages=ASK,  # type: ignore[arg-type]
        response_format={"type": "json_schema", "json_schema": {"name": "city", "schema": schema}},
        temperature=1.0,
        max_tokens=MAX_TOKENS,
        stream=True,
        extra_body=BUDGET,
    )
    kinds: list[str] = []
    content = ""
    for chunk in stream:
        for choice in chunk.choices:
            delta: Any = choice.delta
            if getattr(delta, "reasoning_content", None) or getattr(delta, "reasoning", None):
                kinds.append("reasoning")
            if delta.content:
                kinds.append("content")
                content += delta.content
    assert "content" in kinds and kinds == sorted(kinds, key=["reasoning", "content"].index)
    jsonschema.validate(json.loads(content), schema)


BAD_SCHEMAS = [
    # Not a JSON schema at all (the meta-schema check): the service names the schema.
    ({"type": "object", "properties": {"a": {"type": "bogus"}}}, None),
    # A valid JSON schema that xgrammar cannot compile: its reason comes back.
    ({"type": "object", "properties": {"a": {"type": "string", "pattern": "(?<=a)b"}}}, "ookbehind"),
]


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(("schema", "reason"), BAD_SCHEMAS)
def test_bad_schemas_are_400s_and_the_next_request_works(
    live_gateway: GatewayThread, model_id: str, schema: dict[str, Any], reason: str | None, stream: bool
) -> None:
    body = {
        "model": model_id,
        "messages": ASK,
        "response_format": {"type": "json_schema", "json_schema": {"name": "bad", "schema": schema}},
        "max_tokens": 16,
        "stream": stream,
    }
    response = httpx.post(live_gateway.url + "/v1/chat/completions", json=body, timeout=60)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == "response_format.json_schema.schema", error
    if reason is not None:
        assert reason in error["message"], error
    flat = {"type": "json_schema", "name": "bad", "schema": schema}
    responses = httpx.post(
        live_gateway.url + "/v1/responses",
        json={"model": model_id, "input": "hi", "text": {"format": flat}, "max_output_tokens": 16},
        timeout=60,
    )
    assert responses.status_code == 400 and responses.json()["error"]["param"] == "text.format.schema"
    # The next request is served. (A bounded schema: an unbounded json_object string from these
    # weights may run to max_tokens, which would test the model, not the server.)
    good = {"type": "json_schema", "json_schema": {"name": "city", "schema": PARAMETERS["get_weather"]}}
    fine = {**body, "response_format": good, "max_tokens": MAX_TOKENS, **BUDGET}
    after = httpx.post(live_gateway.url + "/v1/chat/completions", json={**fine, "stream": False}, timeout=120)
    assert after.status_code == 200, after.text
    jsonschema.validate(
        json.loads(after.json()["choices"][0]["message"]["content"]), PARAMETERS["get_weather"]
    )
