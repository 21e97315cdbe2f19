"""openai-agents' `Runner.run` tool loop through the gateway on the trained harmony-tiny model."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from agents import (
    Agent,
    FunctionTool,
    ModelSettings,
    OpenAIChatCompletionsModel,
    Runner,
    set_tracing_disabled,
)

pytestmark = pytest.mark.engine

CITY = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


async def test_runner_run_calls_the_function_tool_and_answers(
    async_client: openai.AsyncOpenAI, model_id: str
) -> None:
    set_tracing_disabled(True)  # no network: traces would go to OpenAI
    calls: list[dict[str, Any]] = []

    async def get_weather(_context: Any, arguments: str) -> str:
        calls.append(json.loads(arguments))
        return json.dumps({"temperature_c": 18})

    # A schema written out (not derived from a Python signature): it is part of the prompt, and the
    # model's contract is for exactly this tool (models/harmony-tiny/README.md).
    tool = FunctionTool(
        name="get_weather",
        description="Get the current weather in a city.",
        params_json_schema=CITY,
        on_invoke_tool=get_weather,
        strict_json_schema=False,
    )
    agent = Agent(
        name="weather",
        tools=[tool],
        model=OpenAIChatCompletionsModel(model=model_id, openai_client=async_client),
        model_settings=ModelSettings(temperature=0),
    )
    result = await Runner.run(agent, "What is the weather in Paris?", max_turns=3)
    assert calls == [{"city": "Paris"}]
    assert "18" in str(result.final_output)
