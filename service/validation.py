"""Request validation: proto fields in, checked values out, or a ServiceError naming the param.

Pure: no rendering, no engine, no clock, no I/O. Whatever depends on the world (today's date,
who the caller is, what the prompt renders to) is passed in by `service.planner`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from gptoss.limits import (
    LOGIT_BIAS_LIMIT,
    MAX_CHOICES,
    MAX_LOGIT_BIAS_TOKENS,
    MAX_REQUEST_ID_LENGTH,
    MAX_STOP_STRINGS,
    MAX_TOP_LOGPROBS,
    PRINTABLE_ASCII_PATTERN,
)
from gptoss.v1 import inference_pb2 as pb

from service import structured_checks
from service.config import Settings
from service.errors import context_length_exceeded, invalid_argument, model_not_found
from service.harmony import ASSISTANT_STOP_TOKENS, ChatMessage, ChatRequest, ToolCallRecord
from service.harmony.render import ChatRole, Effort, ToolChoiceMode
from service.sampling import SamplingOptions
from service.structured_output import ResponseFormatSpec
from service.tool_checks import TOOL_NAME, check_tools

VOCAB_SIZE = 201088  # o200k_harmony, including Harmony's special tokens
_PRINTABLE = re.compile(PRINTABLE_ASCII_PATTERN)
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


def check_request_id(value: str, param: str) -> str:
    """A caller-chosen id: it ends up in headers, logs and the engine, so it must be tame."""
    if len(value) > MAX_REQUEST_ID_LENGTH:
        raise invalid_argument(f"{param} is {len(value)} characters; at most {MAX_REQUEST_ID_LENGTH}", param)
    if not _PRINTABLE.match(value):
        raise invalid_argument(f"{param} must be printable ASCII (no CR/LF, NUL or non-ASCII)", param)
    return value


def check_target(request: pb.GenerateRequest, settings: Settings) -> None:
    if request.model and request.model != settings.model_id:
        raise model_not_found(request.model)
    if request.messages and request.prompt_token_ids:
        raise invalid_argument("set either messages or prompt_token_ids, not both", "prompt_token_ids")


def chat_request(
    request: pb.GenerateRequest | pb.CountTokensRequest, settings: Settings, date: str | None
) -> ChatRequest:
    """The chat to render; `date` is the conversation date (None: leave it out of the prompt)."""
    return chat_and_format(request, settings, date)[0]


def chat_and_format(
    request: pb.GenerateRequest | pb.CountTokensRequest, settings: Settings, date: str | None
) -> tuple[ChatRequest, ResponseFormatSpec | None]:
    """The chat and the checked response format (its `prompt_section` goes into the prompt)."""
    messages, effort, tool_choice = request.messages, request.reasoning_effort, request.tool_choice
    if not messages:
        raise invalid_argument("messages must not be empty", "messages")
    if len(messages) > settings.max_messages:
        raise invalid_argument(
            f"at most {settings.max_messages} messages are allowed, got {len(messages)}", "messages"
        )
    if effort != pb.REASONING_EFFORT_UNSPECIFIED and effort not in _EFFORTS:
        raise invalid_argument(f"unknown reasoning_effort {effort}", "reasoning_effort")
    function_tools = check_tools(request.tools, settings.max_tools, settings.max_tools_bytes)
    names = [tool.name for tool in function_tools]
    mode = _TOOL_CHOICES.get(tool_choice.mode)
    if mode is None:
        raise invalid_argument(f"unknown tool_choice mode {tool_choice.mode}", "tool_choice")
    if mode in ("required", "function") and not function_tools:
        raise invalid_argument(f"tool_choice {mode!r} needs tools", "tool_choice")
    if mode == "function" and tool_choice.function_name not in names:
        raise invalid_argument(
            f"tool_choice names unknown function {tool_choice.function_name!r}", "tool_choice"
        )
    spec = structured_checks.response_format(request.response_format, settings.max_tools_bytes, raw=False)
    chat = ChatRequest(
        messages=[_message(message, i) for i, message in enumerate(messages)],
        tools=function_tools,
        reasoning_effort=_EFFORTS.get(effort, settings.default_reasoning_effort),
        tool_choice=mode,
        tool_choice_function=tool_choice.function_name,
        conversation_date=date,
    )
    return chat, spec


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
        if not TOOL_NAME.match(call.name):
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


def raw_prompt(token_ids: Sequence[int], param: str = "prompt_token_ids") -> list[int]:
    # One pass over the protobuf container (each element read from it is slow), then min/max in C:
    # this was the largest per-request cost of token-id requests (bench/burst_probe.py).
    prompt = list(token_ids)
    if prompt and (min(prompt) < 0 or max(prompt) >= VOCAB_SIZE):
        bad = next(t for t in prompt if not 0 <= t < VOCAB_SIZE)
        raise invalid_argument(f"{param}: {bad} is not a token id (0..{VOCAB_SIZE - 1})", param)
    return prompt


def max_tokens(request: pb.GenerateRequest, prompt_tokens: int, param: str, settings: Settings) -> int:
    """The output budget: the request's max_tokens, else `default_max_tokens`, within the context."""
    limit = settings.max_model_len
    if prompt_tokens >= limit:
        raise context_length_exceeded(
            f"{param}: the prompt is {prompt_tokens} tokens; this model's context is {limit} tokens and needs room for output",
            param,
        )
    room = limit - prompt_tokens
    if not request.HasField("max_tokens"):
        return min(room, settings.default_max_tokens or room)
    if not 1 <= request.max_tokens < limit:
        raise invalid_argument(
            f"max_tokens must be between 1 and {limit - 1}, got {request.max_tokens}", "max_tokens"
        )
    if request.max_tokens > room:
        raise context_length_exceeded(
            f"prompt ({prompt_tokens} tokens) + max_tokens ({request.max_tokens}) exceeds the context "
            f"length of {limit} tokens",
            "max_tokens",
        )
    return request.max_tokens


def _check_range(request: pb.GenerateRequest, name: str, low: float, high: float) -> float | None:
    if not request.HasField(name):
        return None
    value = float(getattr(request, name))
    if not (math.isfinite(value) and low <= value <= high):
        raise invalid_argument(f"{name} must be between {low} and {high}, got {value}", name)
    return value


def sampling(request: pb.GenerateRequest, budget: int, ignore_eos_allowed: bool) -> SamplingOptions:
    """Sampling options; `ignore_eos_allowed`: whether this caller may set ignore_eos."""
    if request.ignore_eos and not ignore_eos_allowed:
        raise invalid_argument(
            "ignore_eos is not enabled for this caller (service setting ignore_eos_callers)", "ignore_eos"
        )
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
        max_tokens=budget,
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
        logprobs=logprobs(request),
        logit_bias=logit_bias(request),
        prompt_logprobs=prompt_logprobs(request),
    )


def logprobs(request: pb.GenerateRequest) -> int | None:
    """None (off), or how many alternatives per token."""
    if not 0 <= request.top_logprobs <= MAX_TOP_LOGPROBS:
        raise invalid_argument(
            f"top_logprobs must be between 0 and {MAX_TOP_LOGPROBS}, got {request.top_logprobs}",
            "top_logprobs",
        )
    if request.top_logprobs and not request.logprobs:
        raise invalid_argument("top_logprobs needs logprobs set", "top_logprobs")
    return request.top_logprobs if request.logprobs else None


def prompt_logprobs(request: pb.GenerateRequest) -> int | None:
    if not request.HasField("prompt_logprobs"):
        return None
    if not request.prompt_token_ids:
        raise invalid_argument("prompt_logprobs is for raw (prompt_token_ids) requests", "prompt_logprobs")
    if not 0 <= request.prompt_logprobs <= MAX_TOP_LOGPROBS:
        raise invalid_argument(f"prompt_logprobs must be between 0 and {MAX_TOP_LOGPROBS}", "prompt_logprobs")
    return request.prompt_logprobs


def logit_bias(request: pb.GenerateRequest) -> tuple[tuple[int, float], ...]:
    if len(request.logit_bias) > MAX_LOGIT_BIAS_TOKENS:
        raise invalid_argument(f"logit_bias: at most {MAX_LOGIT_BIAS_TOKENS} token ids", "logit_bias")
    out = []
    for token, bias in sorted(request.logit_bias.items()):
        if not 0 <= token < VOCAB_SIZE:
            raise invalid_argument(
                f"logit_bias: {token} is not a token id (0..{VOCAB_SIZE - 1})", "logit_bias"
            )
        if not (math.isfinite(bias) and -LOGIT_BIAS_LIMIT <= bias <= LOGIT_BIAS_LIMIT):
            raise invalid_argument(
                f"logit_bias: the bias of token {token} must be between -{LOGIT_BIAS_LIMIT:g} and "
                f"{LOGIT_BIAS_LIMIT:g}, got {bias}",
                "logit_bias",
            )
        out.append((token, float(bias)))
    return tuple(out)


def choices(request: pb.GenerateRequest) -> int:
    """n: 0 (unset) means 1."""
    if not 0 <= request.n <= MAX_CHOICES:
        raise invalid_argument(f"n must be between 1 and {MAX_CHOICES}, got {request.n}", "n")
    return max(1, request.n)


def stop_strings(stop: Sequence[str]) -> tuple[str, ...]:
    if len(stop) > MAX_STOP_STRINGS:
        raise invalid_argument(f"at most {MAX_STOP_STRINGS} stop strings are allowed", "stop")
    if any(not s for s in stop):
        raise invalid_argument("stop strings must not be empty", "stop")
    return tuple(stop)
