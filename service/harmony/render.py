"""Render a chat request to Harmony prompt token ids with `openai_harmony`.

Pure: no gRPC, no engine. The caller validates first; `RenderError` covers what only rendering
can find (a tool result whose call is unknown).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from openai_harmony import (
    Author,
    Conversation,
    DeveloperContent,
    Message,
    ReasoningEffort,
    Role,
    SystemContent,
    ToolDescription,
)

from service.harmony.tokens import encoding

ChatRole = Literal["system", "developer", "user", "assistant", "tool"]
Effort = Literal["low", "medium", "high"]
ToolChoiceMode = Literal["auto", "none", "required", "function"]

_EFFORTS = {"low": ReasoningEffort.LOW, "medium": ReasoningEffort.MEDIUM, "high": ReasoningEffort.HIGH}
FUNCTIONS_PREFIX = "functions."


class RenderError(ValueError):
    """The conversation cannot be expressed in Harmony; `param` names the offending field."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param

    def __reduce__(self) -> tuple[type[RenderError], tuple[str, str]]:
        """Picklable with its `param`: render workers raise it across processes."""
        return (RenderError, (str(self), self.param))


@dataclass(frozen=True)
class ToolCallRecord:
    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class ChatMessage:
    role: ChatRole
    content: str = ""
    channel: str = ""
    reasoning: str = ""
    tool_calls: tuple[ToolCallRecord, ...] = ()
    tool_call_id: str = ""
    name: str = ""


@dataclass(frozen=True)
class FunctionTool:
    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ChatRequest:
    """Everything that shapes the prompt."""

    messages: Sequence[ChatMessage]
    tools: Sequence[FunctionTool] = ()
    reasoning_effort: Effort = "medium"
    tool_choice: ToolChoiceMode = "auto"
    tool_choice_function: str = ""
    conversation_date: str | None = None


def render_prompt(request: ChatRequest) -> list[int]:
    """Token ids of the conversation, ending with `<|start|>assistant` for the model to continue.

    The system + developer prefix (effort, date, instructions, tool schemas: the same for most
    requests of one application, and for tool-heavy agents the larger part) comes from a cache;
    only the history is rendered per request. Equal to rendering the whole conversation at once
    (tests/unit/test_harmony_render.py pins that).
    """
    history = Conversation.from_messages(history_messages(request))
    tail = encoding().render_conversation_for_completion(history, Role.ASSISTANT)
    return [*_prefix_tokens(_prefix_key(request)), *tail]


def harmony_messages(request: ChatRequest) -> list[Message]:
    """The Harmony messages for a request: system, developer (instructions + tools), then history."""
    return [*_prefix_messages(_prefix_key(request)), *history_messages(request)]


def history_messages(request: ChatRequest) -> list[Message]:
    """The conversation after the system and developer messages."""
    messages: list[Message] = []
    calls_by_id: dict[str, str] = {}
    for index, message in enumerate(request.messages):
        messages.extend(_history_messages(message, index, calls_by_id))
    return messages


@dataclass(frozen=True)
class _PrefixKey:
    """What the system and developer messages are made of (hashable: the prefix cache's key)."""

    effort: Effort
    date: str | None
    instructions: tuple[str, ...]
    # Per tool: name, description, parameters as JSON (key order kept: it is rendered).
    tools: tuple[tuple[str, str, str], ...]


def _prefix_key(request: ChatRequest) -> _PrefixKey:
    instructions = [m.content for m in request.messages if m.role in ("system", "developer") and m.content]
    tools = _offered_tools(request)
    if tools and request.tool_choice == "required":
        instructions.append("You must call one of the available functions before you answer.")
    elif tools and request.tool_choice == "function":
        instructions.append(f"You must call the function `{request.tool_choice_function}` before you answer.")
    return _PrefixKey(
        effort=request.reasoning_effort,
        date=request.conversation_date,
        instructions=tuple(instructions),
        tools=tuple((t.name, t.description, json.dumps(t.parameters)) for t in tools),
    )


@functools.lru_cache(maxsize=256)
def _prefix_tokens(key: _PrefixKey) -> tuple[int, ...]:
    return tuple(encoding().render_conversation(Conversation.from_messages(_prefix_messages(key))))


def _prefix_messages(key: _PrefixKey) -> list[Message]:
    system = SystemContent.new().with_reasoning_effort(_EFFORTS[key.effort])
    if key.date:
        system = system.with_conversation_start_date(key.date)
    messages = [Message.from_role_and_content(Role.SYSTEM, system)]
    if key.instructions or key.tools:
        messages.append(_developer_message(key))
    return messages


def _offered_tools(request: ChatRequest) -> list[FunctionTool]:
    if request.tool_choice == "none":
        return []
    if request.tool_choice == "function":
        return [tool for tool in request.tools if tool.name == request.tool_choice_function]
    return list(request.tools)


def _developer_message(key: _PrefixKey) -> Message:
    """OpenAI system and developer messages both become Harmony developer instructions."""
    content = DeveloperContent.new()
    if key.instructions:
        content = content.with_instructions("\n\n".join(key.instructions))
    if key.tools:
        content = content.with_function_tools(
            [
                ToolDescription.new(name, description, parameters=json.loads(parameters) or None)
                for name, description, parameters in key.tools
            ]
        )
    return Message.from_role_and_content(Role.DEVELOPER, content)


def _history_messages(message: ChatMessage, index: int, calls_by_id: dict[str, str]) -> list[Message]:
    if message.role in ("system", "developer"):
        return []  # folded into the developer message
    if message.role == "user":
        return [Message.from_role_and_content(Role.USER, message.content)]
    if message.role == "assistant":
        return _assistant_messages(message, calls_by_id)
    name = message.name or calls_by_id.get(message.tool_call_id, "")
    if not name:
        raise RenderError(
            f"messages[{index}]: tool result needs `name` or a `tool_call_id` of an earlier assistant tool call",
            param=f"messages[{index}].tool_call_id",
        )
    author = Author.new(Role.TOOL, FUNCTIONS_PREFIX + name.removeprefix(FUNCTIONS_PREFIX))
    return [
        Message.from_author_and_content(author, message.content)
        .with_channel("commentary")
        .with_recipient("assistant")
    ]


def _assistant_messages(message: ChatMessage, calls_by_id: dict[str, str]) -> list[Message]:
    rendered: list[Message] = []
    if message.reasoning:
        rendered.append(
            Message.from_role_and_content(Role.ASSISTANT, message.reasoning).with_channel("analysis")
        )
    if message.content:
        rendered.append(
            Message.from_role_and_content(Role.ASSISTANT, message.content).with_channel(
                message.channel or "final"
            )
        )
    for call in message.tool_calls:
        calls_by_id[call.id] = call.name
        rendered.append(
            Message.from_role_and_content(Role.ASSISTANT, call.arguments or "{}")
            .with_channel("commentary")
            .with_recipient(FUNCTIONS_PREFIX + call.name.removeprefix(FUNCTIONS_PREFIX))
            .with_content_type("<|constrain|>json")
        )
    return rendered
