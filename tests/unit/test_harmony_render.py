"""Rendering equals Harmony's reference format for every role, tools and each reasoning effort.

The expected prompts are written out by hand from the Harmony format, not produced by the code
under test, so a wrong mapping (role, channel, recipient, dropped reasoning) fails here.
"""

from __future__ import annotations

import pytest

from service.harmony import ChatMessage, ChatRequest, FunctionTool, RenderError, ToolCallRecord, render_prompt
from service.harmony.tokens import encoding

WEATHER = FunctionTool(
    name="get_weather",
    description="Get the weather for a city",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)

SYSTEM_HEAD = (
    "<|start|>system<|message|>You are ChatGPT, a large language model trained by OpenAI.\n"
    "Knowledge cutoff: 2024-06\n"
)


def text(request: ChatRequest) -> str:
    return encoding().decode(render_prompt(request))


@pytest.mark.parametrize("effort", ["low", "medium", "high"])
def test_user_only_each_effort(effort: str) -> None:
    request = ChatRequest(messages=[ChatMessage("user", "Hi")], reasoning_effort=effort)  # type: ignore[arg-type]
    assert text(request) == (
        SYSTEM_HEAD + f"\nReasoning: {effort}\n\n"
        "# Valid channels: analysis, commentary, final. Channel must be included for every message.<|end|>"
        "<|start|>user<|message|>Hi<|end|><|start|>assistant"
    )


def test_date_system_and_developer_become_instructions() -> None:
    request = ChatRequest(
        messages=[
            ChatMessage("system", "Be terse."),
            ChatMessage("developer", "Answer in French."),
            ChatMessage("user", "Hi"),
        ],
        reasoning_effort="low",
        conversation_date="2026-11-27",
    )
    assert text(request) == (
        SYSTEM_HEAD + "Current date: 2026-11-27\n\nReasoning: low\n\n"
        "# Valid channels: analysis, commentary, final. Channel must be included for every message.<|end|>"
        "<|start|>developer<|message|># Instructions\n\nBe terse.\n\nAnswer in French.<|end|>"
        "<|start|>user<|message|>Hi<|end|><|start|>assistant"
    )


def test_tools_and_a_full_tool_round_trip_history() -> None:
    request = ChatRequest(
        messages=[
            ChatMessage("user", "Weather in Paris?"),
            ChatMessage(
                "assistant",
                reasoning="Need the weather.",
                tool_calls=(ToolCallRecord("call_1", "get_weather", '{"city":"Paris"}'),),
            ),
            ChatMessage("tool", '{"temp": 20}', tool_call_id="call_1"),
        ],
        tools=[WEATHER],
        reasoning_effort="medium",
    )
    assert text(request) == (
        SYSTEM_HEAD + "\nReasoning: medium\n\n"
        "# Valid channels: analysis, commentary, final. Channel must be included for every message.\n"
        "Calls to these tools must go to the commentary channel: 'functions'.<|end|>"
        "<|start|>developer<|message|># Tools\n\n## functions\n\nnamespace functions {\n\n"
        "// Get the weather for a city\ntype get_weather = (_: {\ncity: string,\n}) => any;\n\n"
        "} // namespace functions<|end|>"
        "<|start|>user<|message|>Weather in Paris?<|end|>"
        # reasoning of the turn in progress is kept (the turn has no final answer yet)
        "<|start|>assistant<|channel|>analysis<|message|>Need the weather.<|end|>"
        '<|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{"city":"Paris"}<|call|>'
        '<|start|>functions.get_weather<|channel|>commentary to=assistant<|message|>{"temp": 20}<|end|>'
        "<|start|>assistant"
    )


def test_reasoning_of_completed_turns_is_dropped() -> None:
    request = ChatRequest(
        messages=[
            ChatMessage("user", "2+2?"),
            ChatMessage("assistant", "4", reasoning="Simple sum."),
            ChatMessage("user", "Thanks"),
        ]
    )
    rendered = text(request)
    assert "Simple sum." not in rendered
    assert rendered.endswith(
        "<|start|>user<|message|>2+2?<|end|><|start|>assistant<|channel|>final<|message|>4<|end|>"
        "<|start|>user<|message|>Thanks<|end|><|start|>assistant"
    )


def test_tool_choice_none_hides_tools_and_function_keeps_one() -> None:
    other = FunctionTool(name="get_time")
    none = text(ChatRequest(messages=[ChatMessage("user", "x")], tools=[WEATHER, other], tool_choice="none"))
    assert "namespace functions" not in none
    named = text(
        ChatRequest(
            messages=[ChatMessage("user", "x")],
            tools=[WEATHER, other],
            tool_choice="function",
            tool_choice_function="get_time",
        )
    )
    assert "type get_time" in named and "get_weather" not in named.replace("`get_weather`", "")
    assert "You must call the function `get_time`" in named


def test_tool_result_without_known_call_is_an_error() -> None:
    with pytest.raises(RenderError) as info:
        render_prompt(
            ChatRequest(messages=[ChatMessage("user", "x"), ChatMessage("tool", "{}", tool_call_id="nope")])
        )
    assert info.value.param == "messages[1].tool_call_id"


def test_prompt_ends_ready_for_the_assistant() -> None:
    tokens = render_prompt(ChatRequest(messages=[ChatMessage("user", "Hi")]))
    assert encoding().decode(tokens[-2:]) == "<|start|>assistant"


def _whole_conversation(request: ChatRequest) -> list[int]:
    """The reference: Harmony's own render of the full conversation in one call (no prefix cache)."""
    from openai_harmony import Conversation, Role

    from service.harmony.render import harmony_messages

    conversation = Conversation.from_messages(harmony_messages(request))
    return list(encoding().render_conversation_for_completion(conversation, Role.ASSISTANT))


_HISTORY = [
    ChatMessage("system", "Be brief."),
    ChatMessage("user", "Weather in Paris?"),
    ChatMessage(
        "assistant",
        reasoning="Need the tool.",
        tool_calls=(ToolCallRecord("c1", "get_weather", '{"city":"Paris"}'),),
    ),
    ChatMessage("tool", "18C, clear", tool_call_id="c1"),
    ChatMessage("assistant", "18C and clear.", reasoning="Answer now."),
    ChatMessage("developer", "Use metric units."),
    ChatMessage("user", "And tomorrow?"),
]


@pytest.mark.parametrize("turns", range(1, len(_HISTORY) + 1))
@pytest.mark.parametrize("tool_choice", ["auto", "none", "required"])
@pytest.mark.parametrize("with_tools", [False, True])
def test_cached_prefix_render_equals_whole_conversation_render(
    turns: int, tool_choice: str, with_tools: bool
) -> None:
    request = ChatRequest(
        messages=_HISTORY[:turns],
        tools=[WEATHER] if with_tools else [],
        tool_choice=tool_choice,  # type: ignore[arg-type]
        reasoning_effort="high",
        conversation_date="2026-11-27",
    )
    assert render_prompt(request) == _whole_conversation(request)
    assert render_prompt(request) == _whole_conversation(request)  # second call: from the cache


def test_prefix_cache_keys_on_everything_the_prefix_holds() -> None:
    from service.harmony.render import _prefix_tokens

    _prefix_tokens.cache_clear()
    base = ChatRequest(messages=[ChatMessage("user", "Hi")], tools=[WEATHER], conversation_date="2026-11-27")
    variants = [
        base,
        ChatRequest(
            messages=[ChatMessage("user", "Other question")], tools=[WEATHER], conversation_date="2026-11-27"
        ),
        ChatRequest(messages=[ChatMessage("user", "Hi")], tools=[WEATHER], conversation_date="2026-11-28"),
        ChatRequest(messages=[ChatMessage("user", "Hi")], tools=[WEATHER], reasoning_effort="low"),
        ChatRequest(messages=[ChatMessage("developer", "x"), ChatMessage("user", "Hi")], tools=[WEATHER]),
        ChatRequest(messages=[ChatMessage("user", "Hi")], tools=[FunctionTool("get_weather", "other text")]),
    ]
    prompts = [render_prompt(v) for v in variants]
    assert prompts == [_whole_conversation(v) for v in variants]
    info = _prefix_tokens.cache_info()
    assert info.hits >= 1 and info.currsize == len(variants) - 1  # only the user text differs in #2


def test_tool_parameter_order_is_rendered_as_given() -> None:
    params = {"type": "object", "properties": {"zeta": {"type": "string"}, "alpha": {"type": "number"}}}
    rendered = text(ChatRequest(messages=[ChatMessage("user", "Hi")], tools=[FunctionTool("f", "", params)]))
    assert rendered.index("zeta") < rendered.index("alpha")
