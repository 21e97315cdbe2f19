"""Request validation: proto in, a checked plan out, or a ServiceError naming the problem.

Pure (no engine, no I/O): rendering happens here too, because "prompt too long" can only be
known after Harmony rendering.
"""

from __future__ import annotations

import datetime
import math
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from google.protobuf.json_format import MessageToDict
from gptoss.v1 import inference_pb2 as pb

from service.config import Settings
from service.engine import SamplingOptions
from service.errors import ServiceError, context_length_exceeded, invalid_argument, model_not_found
from service.harmony import (
    ASSISTANT_STOP_TOKENS,
    ChatMessage,
    ChatRequest,
    FunctionTool,
    RenderError,
    ToolCallRecord,
    render_prompt,
)
from service.harmony.render import ChatRole, Effort, ToolChoiceMode

VOCAB_SIZE = 201088  # o200k_harmony, including Harmony's special tokens
MAX_STOP_STRINGS = 16
_TOOL_NAME = re.compile(r"^[A-Za-z0-9_\-.]{1,64}$")
_ROLES: dict[int, ChatRole] = {
    pb.ROLE_SYSTEM: "system",
    pb.ROLE_DEVELOPER: "developer",
    pb.ROLE_USER: "user",
    pb.ROLE_ASSISTANT: "assistant",
    pb.ROLE_TOOL: "tool",
}
_EFFORTS: dict[int, Effort] = {
    pb.REASONING_EFFORT_LOW: "low",
    pb.REASONING_EFFORT_MEDIUM: "medium",
    pb.REASONING_EFFORT_HIGH: "high",
}
_TOOL_CHOICES: dict[int, ToolChoiceMode] = {
    pb.TOOL_CHOICE_MODE_UNSPECIFIED: "auto",
    pb.TOOL_CHOICE_MODE_AUTO: "auto",
    pb.TOOL_CHOICE_MODE_NONE: "none",
    pb.TOOL_CHOICE_MODE_REQUIRED: "required",
    pb.TOOL_CHOICE_MODE_FUNCTION: "function",
}
_ASSISTANT_CHANNELS = ("", "final", "analysis", "commentary")


@dataclass(frozen=True)
class GenerationPlan:
    """A validated Generate request, ready for the engine."""

    request_id: str
    prompt_token_ids: list[int]
    options: SamplingOptions
    raw: bool
    stop: tuple[str, ...]


def chat_to_render(request: pb.GenerateRequest, settings: Settings) -> ChatRequest | None:
    """The checks that come before rendering; the chat to render, or None for a token-id prompt."""
    _check_target(request, settings)
    if request.prompt_token_ids:
        return None
    return _chat_of(request, settings)


def plan_generate(
    request: pb.GenerateRequest, settings: Settings, rendered: list[int] | None = None
) -> GenerationPlan:
    """The checked plan. `rendered`: the prompt of `chat_to_render(request)`, when the caller
    rendered it elsewhere (a worker process); otherwise chat prompts render here."""
    _check_target(request, settings)
    raw = bool(request.prompt_token_ids)
    if raw:
        prompt = _raw_prompt(request.prompt_token_ids)
        param = "prompt_token_ids"
    else:
        prompt = rendered if rendered is not None else render(_chat_of(request, settings))
        param = "messages"
    limit = settings.max_model_len
    if len(prompt) >= limit:
        raise context_length_exceeded(
            f"{param}: the prompt is {len(prompt)} tokens; this model's context is {limit} tokens and needs room for output",
            param,
        )
    max_tokens = limit - len(prompt)
    if request.HasField("max_tokens"):
        if not 1 <= request.max_tokens < limit:
            raise invalid_argument(
                f"max_tokens must be between 1 and {limit - 1}, got {request.max_tokens}", "max_tokens"
            )
        if len(prompt) + request.max_tokens > limit:
            raise context_length_exceeded(
                f"prompt ({len(prompt)} tokens) + max_tokens ({request.max_tokens}) exceeds the context "
                f"length of {limit} tokens",
                "max_tokens",
            )
        max_tokens = request.max_tokens
    return GenerationPlan(
        request_id=request.request_id or f"req-{uuid.uuid4().hex}",
        prompt_token_ids=prompt,
        options=_sampling(request, max_tokens),
        raw=raw,
        stop=_stop_strings(request.stop),
    )


def count_prompt_tokens(request: pb.CountTokensRequest, settings: Settings) -> int:
    return len(render(_chat_of(request, settings)))


def _chat_of(request: pb.GenerateRequest | pb.CountTokensRequest, settings: Settings) -> ChatRequest:
    return chat_request(
        request.messages, request.tools, request.reasoning_effort, request.tool_choice, settings
    )


def render(chat: ChatRequest) -> list[int]:
    try:
        return render_prompt(chat)
    except RenderError as exc:
        raise render_failed(exc) from exc


def render_failed(exc: RenderError) -> ServiceError:
    return invalid_argument(str(exc), exc.param)


def _check_target(request: pb.GenerateRequest, settings: Settings) -> None:
    if request.model and request.model != settings.model_id:
        raise model_not_found(request.model)
    if request.messages and request.prompt_token_ids:
        raise invalid_argument("set either messages or prompt_token_ids, not both", "prompt_token_ids")


def chat_request(
    messages: Sequence[pb.Message],
    tools: Sequence[pb.Tool],
    effort: int,
    tool_choice: pb.ToolChoice,
    settings: Settings,
) -> ChatRequest:
    if not messages:
        raise invalid_argument("messages must not be empty", "messages")
    if len(messages) > settings.max_messages:
        raise invalid_argument(
            f"at most {settings.max_messages} messages are allowed, got {len(messages)}", "messages"
        )
    if len(tools) > settings.max_tools:
        raise invalid_argument(f"at most {settings.max_tools} tools are allowed, got {len(tools)}", "tools")
    if effort != pb.REASONING_EFFORT_UNSPECIFIED and effort not in _EFFORTS:
        raise invalid_argument(f"unknown reasoning_effort {effort}", "reasoning_effort")
    function_tools = [_tool(tool, i) for i, tool in enumerate(tools)]
    names = [tool.name for tool in function_tools]
    if len(set(names)) != len(names):
        raise invalid_argument("tool names must be unique", "tools")
    mode = _TOOL_CHOICES.get(tool_choice.mode)
    if mode is None:
        raise invalid_argument(f"unknown tool_choice mode {tool_choice.mode}", "tool_choice")
    if mode in ("required", "function") and not function_tools:
        raise invalid_argument(f"tool_choice {mode!r} needs tools", "tool_choice")
    if mode == "function" and tool_choice.function_name not in names:
        raise invalid_argument(
            f"tool_choice names unknown function {tool_choice.function_name!r}", "tool_choice"
        )
    return ChatRequest(
        messages=[_message(message, i) for i, message in enumerate(messages)],
        tools=function_tools,
        reasoning_effort=_EFFORTS.get(effort, settings.default_reasoning_effort),
        tool_choice=mode,
        tool_choice_function=tool_choice.function_name,
        conversation_date=datetime.date.today().isoformat() if settings.include_conversation_date else None,
    )


def _message(message: pb.Message, index: int) -> ChatMessage:
    param = f"messages[{index}]"
    role = _ROLES.get(message.role)
    if role is None:
        raise invalid_argument(f"{param}.role: unknown role {message.role}", f"{param}.role")
    if role != "assistant" and (message.channel or message.reasoning or message.tool_calls):
        raise invalid_argument(
            f"{param}: channel, reasoning and tool_calls are for assistant messages", param
        )
    if role == "assistant" and message.channel not in _ASSISTANT_CHANNELS:
        raise invalid_argument(
            f"{param}.channel must be one of final, analysis, commentary", f"{param}.channel"
        )
    if role == "tool" and not (message.tool_call_id or message.name):
        raise invalid_argument(f"{param}: a tool message needs tool_call_id or name", f"{param}.tool_call_id")
    calls = []
    for j, call in enumerate(message.tool_calls):
        if not _TOOL_NAME.match(call.name):
            raise invalid_argument(
                f"{param}.tool_calls[{j}].name is not a valid function name", f"{param}.tool_calls"
            )
        calls.append(ToolCallRecord(id=call.id, name=call.name, arguments=call.arguments))
    content, reasoning = message.content, message.reasoning
    if role == "assistant" and message.channel == "analysis":
        content, reasoning = "", reasoning or message.content
    return ChatMessage(
        role=role,
        content=content,
        channel=message.channel if message.channel != "analysis" else "",
        reasoning=reasoning,
        tool_calls=tuple(calls),
        tool_call_id=message.tool_call_id,
        name=message.name,
    )


def _tool(tool: pb.Tool, index: int) -> FunctionTool:
    param = f"tools[{index}]"
    if not _TOOL_NAME.match(tool.name):
        raise invalid_argument(
            f"{param}.name must match {_TOOL_NAME.pattern}, got {tool.name!r}", f"{param}.name"
        )
    parameters: dict[str, Any] = MessageToDict(tool.parameters) if tool.HasField("parameters") else {}
    if parameters:
        schema_type = parameters.get("type", "object")
        if schema_type != "object":
            raise invalid_argument(
                f"{param}.parameters must be a JSON schema of type object, got type {schema_type!r}",
                f"{param}.parameters",
            )
        for key in ("properties", "$defs", "definitions"):
            if key in parameters and not isinstance(parameters[key], dict):
                raise invalid_argument(f"{param}.parameters.{key} must be an object", f"{param}.parameters")
        if "required" in parameters and not (
            isinstance(parameters["required"], list)
            and all(isinstance(r, str) for r in parameters["required"])
        ):
            raise invalid_argument(
                f"{param}.parameters.required must be a list of names", f"{param}.parameters"
            )
    return FunctionTool(name=tool.name, description=tool.description, parameters=parameters)


def _raw_prompt(token_ids: Sequence[int]) -> list[int]:
    # One pass over the protobuf container (each element read from it is slow), then min/max in C:
    # this was the largest per-request cost of token-id requests (bench/burst_probe.py).
    prompt = list(token_ids)
    if prompt and (min(prompt) < 0 or max(prompt) >= VOCAB_SIZE):
        bad = next(t for t in prompt if not 0 <= t < VOCAB_SIZE)
        raise invalid_argument(
            f"prompt_token_ids: {bad} is not a token id (0..{VOCAB_SIZE - 1})", "prompt_token_ids"
        )
    return prompt


def _check_range(request: pb.GenerateRequest, name: str, low: float, high: float) -> float | None:
    if not request.HasField(name):  # type: ignore[arg-type]
        return None
    value = float(getattr(request, name))
    if not (math.isfinite(value) and low <= value <= high):
        raise invalid_argument(f"{name} must be between {low} and {high}, got {value}", name)
    return value


def _sampling(request: pb.GenerateRequest, max_tokens: int) -> SamplingOptions:
    temperature = _check_range(request, "temperature", 0.0, 2.0)
    top_p = _check_range(request, "top_p", 0.0, 1.0)
    if top_p is not None and top_p <= 0:
        raise invalid_argument("top_p must be greater than 0", "top_p")
    min_p = _check_range(request, "min_p", 0.0, 1.0)
    presence = _check_range(request, "presence_penalty", -2.0, 2.0)
    frequency = _check_range(request, "frequency_penalty", -2.0, 2.0)
    top_k = None
    if request.HasField("top_k"):
        if request.top_k < -1:
            raise invalid_argument(f"top_k must be -1 (off) or >= 0, got {request.top_k}", "top_k")
        top_k = request.top_k if request.top_k > 0 else -1
    return SamplingOptions(
        max_tokens=max_tokens,
        # ignore_eos (benchmarks) generates exactly max_tokens: no end-of-turn stop tokens either.
        stop_token_ids=() if request.ignore_eos else ASSISTANT_STOP_TOKENS,
        temperature=temperature,
        top_p=top_p,
        top_k=top_k,
        min_p=min_p,
        seed=request.seed if request.HasField("seed") else None,
        presence_penalty=presence,
        frequency_penalty=frequency,
        ignore_eos=request.ignore_eos,
    )


def _stop_strings(stop: Sequence[str]) -> tuple[str, ...]:
    if len(stop) > MAX_STOP_STRINGS:
        raise invalid_argument(f"at most {MAX_STOP_STRINGS} stop strings are allowed", "stop")
    if any(not s for s in stop):
        raise invalid_argument("stop strings must not be empty", "stop")
    return tuple(stop)
