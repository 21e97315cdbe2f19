"""Build GenerateRequest / CountTokensRequest protos from plain Python values.

Messages and tools may be dicts in either our shape ({"name", "arguments"}) or OpenAI's
({"type": "function", "function": {...}}), so callers can reuse OpenAI-style histories.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypedDict

from gptoss.formats import ResponseFormatLike, build_response_format
from gptoss.v1 import inference_pb2 as pb

MessageLike = Mapping[str, Any] | Any  # a dict or a gptoss.v1.Message
ToolLike = Mapping[str, Any] | Any  # a dict or a gptoss.v1.Tool
ToolChoiceLike = str | Mapping[str, Any] | Any  # "auto" | "none" | "required" | {"name": fn} | ToolChoice

_ROLES = {
    "system": pb.ROLE_SYSTEM,
    "developer": pb.ROLE_DEVELOPER,
    "user": pb.ROLE_USER,
    "assistant": pb.ROLE_ASSISTANT,
    "tool": pb.ROLE_TOOL,
}
_EFFORTS = {
    "low": pb.REASONING_EFFORT_LOW,
    "medium": pb.REASONING_EFFORT_MEDIUM,
    "high": pb.REASONING_EFFORT_HIGH,
}
_TOOL_CHOICE_MODES = {
    "auto": pb.TOOL_CHOICE_MODE_AUTO,
    "none": pb.TOOL_CHOICE_MODE_NONE,
    "required": pb.TOOL_CHOICE_MODE_REQUIRED,
}
REASONING_EFFORTS = tuple(_EFFORTS)


class CountTokensOptions(TypedDict, total=False):
    """Keyword options shared by CountTokens and Generate: the conversation."""

    messages: Iterable[MessageLike]
    tools: Iterable[ToolLike] | None
    reasoning_effort: str | int | None
    tool_choice: ToolChoiceLike | None
    # Structured output (gptoss.formats): also rendered into the prompt, so CountTokens takes it.
    response_format: ResponseFormatLike | None


class GenerateOptions(CountTokensOptions, total=False):
    """Keyword options that build a GenerateRequest (see the proto for each field's meaning)."""

    max_tokens: int | None
    temperature: float | None
    top_p: float | None
    top_k: int | None
    min_p: float | None
    seed: int | None
    stop: str | Sequence[str] | None
    presence_penalty: float | None
    frequency_penalty: float | None
    prompt_token_ids: Sequence[int] | None
    model: str | None
    ignore_eos: bool
    logprobs: bool
    top_logprobs: int | None
    n: int | None
    logit_bias: Mapping[int, float] | None
    prompt_logprobs: int | None
    # Cap on analysis tokens before the answer is forced; 0: no analysis; None: the server's default.
    max_reasoning_tokens: int | None


# Sampling fields copied verbatim when not None.
_SCALAR_FIELDS = (
    "max_tokens",
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "top_logprobs",
    "n",
    "prompt_logprobs",
    "max_reasoning_tokens",
)


def _json_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _tool_call(raw: Mapping[str, Any] | Any) -> Any:
    if isinstance(raw, pb.ToolCall):
        return raw
    if not isinstance(raw, Mapping):
        raise TypeError(f"tool call must be a dict or gptoss.v1.ToolCall, not {type(raw).__name__}")
    function = raw.get("function")
    source: Mapping[str, Any] = function if isinstance(function, Mapping) else raw
    return pb.ToolCall(
        id=str(raw.get("id") or ""),
        name=str(source.get("name") or ""),
        arguments=_json_text(source.get("arguments") or ""),
    )


def build_message(raw: MessageLike) -> Any:
    """One history message; raises ValueError naming the bad field."""
    if isinstance(raw, pb.Message):
        return raw
    if not isinstance(raw, Mapping):
        raise TypeError(f"message must be a dict or gptoss.v1.Message, not {type(raw).__name__}")
    role = raw.get("role")
    if role not in _ROLES:
        raise ValueError(f"message role must be one of {sorted(_ROLES)}, got {role!r}")
    content = raw.get("content")
    if content is None:
        content = ""
    if isinstance(content, list):  # OpenAI content parts: keep the text parts
        content = "".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
    if not isinstance(content, str):
        raise ValueError(f"message content must be a string, got {type(content).__name__}")
    return pb.Message(
        role=_ROLES[role],
        content=content,
        channel=str(raw.get("channel") or ""),
        reasoning=str(raw.get("reasoning") or raw.get("reasoning_content") or ""),
        tool_calls=[_tool_call(c) for c in raw.get("tool_calls") or ()],
        tool_call_id=str(raw.get("tool_call_id") or ""),
        name=str(raw.get("name") or ""),
    )


def build_tool(raw: ToolLike) -> Any:
    """One function tool; parameters must be a JSON-schema object (a dict)."""
    if isinstance(raw, pb.Tool):
        return raw
    if not isinstance(raw, Mapping):
        raise TypeError(f"tool must be a dict or gptoss.v1.Tool, not {type(raw).__name__}")
    function = raw.get("function")
    source: Mapping[str, Any] = function if isinstance(function, Mapping) else raw
    name = source.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError("tool needs a non-empty 'name'")
    strict = source.get("strict")
    if strict is not None and not isinstance(strict, bool):
        raise ValueError(f"tool {name!r}: 'strict' must be a boolean")
    tool = pb.Tool(name=name, description=str(source.get("description") or ""), strict=bool(strict))
    parameters = source.get("parameters")
    if parameters is not None:
        if not isinstance(parameters, Mapping):
            raise ValueError(f"tool {name!r}: 'parameters' must be a JSON schema object")
        try:
            tool.parameters.update(dict(parameters))
        except OverflowError as exc:  # protobuf's Struct holds numbers as doubles
            raise ValueError(f"tool {name!r}: a number in 'parameters' is too large ({exc})") from None
    return tool


def build_tool_choice(raw: ToolChoiceLike) -> Any:
    if isinstance(raw, pb.ToolChoice):
        return raw
    if isinstance(raw, str):
        if raw in _TOOL_CHOICE_MODES:
            return pb.ToolChoice(mode=_TOOL_CHOICE_MODES[raw])
        raise ValueError(f"tool_choice must be one of {sorted(_TOOL_CHOICE_MODES)} or {{'name': ...}}")
    if isinstance(raw, Mapping):
        function = raw.get("function")
        name = function.get("name") if isinstance(function, Mapping) else raw.get("name")
        if isinstance(name, str) and name:
            return pb.ToolChoice(mode=pb.TOOL_CHOICE_MODE_FUNCTION, function_name=name)
    raise ValueError(f"cannot read tool_choice {raw!r}")


def reasoning_effort_value(raw: str | int | None) -> int:
    if raw is None:
        return int(pb.REASONING_EFFORT_UNSPECIFIED)
    if isinstance(raw, str):
        if raw.lower() not in _EFFORTS:
            raise ValueError(f"reasoning_effort must be one of {list(_EFFORTS)}, got {raw!r}")
        return int(_EFFORTS[raw.lower()])
    return int(raw)


def _conversation(
    messages: Iterable[MessageLike] | None,
    tools: Iterable[ToolLike] | None,
    reasoning_effort: str | int | None,
    tool_choice: ToolChoiceLike | None,
    response_format: ResponseFormatLike | None,
) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "messages": [build_message(m) for m in messages or ()],
        "tools": [build_tool(t) for t in tools or ()],
        "reasoning_effort": reasoning_effort_value(reasoning_effort),
    }
    if tool_choice is not None:
        fields["tool_choice"] = build_tool_choice(tool_choice)
    fmt = build_response_format(response_format)
    if fmt is not None:
        fields["response_format"] = fmt
    return fields


def build_generate_request(
    *,
    messages: Iterable[MessageLike] | None = None,
    tools: Iterable[ToolLike] | None = None,
    reasoning_effort: str | int | None = None,
    tool_choice: ToolChoiceLike | None = None,
    response_format: ResponseFormatLike | None = None,
    stop: str | Sequence[str] | None = None,
    request_id: str | None = None,
    prompt_token_ids: Sequence[int] | None = None,
    model: str | None = None,
    ignore_eos: bool = False,
    logprobs: bool = False,
    logit_bias: Mapping[int, float] | None = None,
    **sampling: Any,
) -> Any:
    """A GenerateRequest from keyword arguments (sampling: max_tokens, temperature, top_p, ...)."""
    unknown = set(sampling) - set(_SCALAR_FIELDS)
    if unknown:
        raise TypeError(f"unknown GenerateRequest option(s): {', '.join(sorted(unknown))}")
    if messages is None and prompt_token_ids is None:
        raise ValueError("pass messages (or prompt_token_ids for raw mode)")
    request = pb.GenerateRequest(
        **_conversation(messages, tools, reasoning_effort, tool_choice, response_format),
        prompt_token_ids=list(prompt_token_ids or ()),
        stop=[stop] if isinstance(stop, str) else list(stop or ()),
        request_id=request_id or "",
        model=model or "",
        ignore_eos=ignore_eos,
        logprobs=logprobs,
        logit_bias={int(k): float(v) for k, v in (logit_bias or {}).items()},
    )
    for name in _SCALAR_FIELDS:
        value = sampling.get(name)
        if value is not None:
            setattr(request, name, value)
    return request


def build_count_tokens_request(
    *,
    messages: Iterable[MessageLike],
    tools: Iterable[ToolLike] | None = None,
    reasoning_effort: str | int | None = None,
    tool_choice: ToolChoiceLike | None = None,
    response_format: ResponseFormatLike | None = None,
) -> Any:
    return pb.CountTokensRequest(
        **_conversation(messages, tools, reasoning_effort, tool_choice, response_format)
    )


def resolve_generate_request(request: Any | None, request_id: str | None, options: Mapping[str, Any]) -> Any:
    """Either a ready GenerateRequest or keyword options (not both); request_id overrides the proto's."""
    if request is not None:
        if options:
            raise TypeError(f"pass a GenerateRequest or keyword options, not both (got {', '.join(options)})")
        if not isinstance(request, pb.GenerateRequest):
            raise TypeError(f"request must be a gptoss.v1.GenerateRequest, not {type(request).__name__}")
        if request_id and request.request_id != request_id:
            request = pb.GenerateRequest.FromString(request.SerializeToString())
            request.request_id = request_id
        return request
    return build_generate_request(request_id=request_id, **options)


def resolve_count_tokens_request(request: Any | None, options: Mapping[str, Any]) -> Any:
    """Either a ready CountTokensRequest (or a GenerateRequest to count) or keyword options."""
    if request is not None:
        if options:
            raise TypeError(f"pass a request or keyword options, not both (got {', '.join(options)})")
        if isinstance(request, pb.CountTokensRequest):
            return request
        if isinstance(request, pb.GenerateRequest):
            count = pb.CountTokensRequest(
                messages=request.messages,
                tools=request.tools,
                reasoning_effort=request.reasoning_effort,
                tool_choice=request.tool_choice,
            )
            if request.HasField("response_format"):
                count.response_format.CopyFrom(request.response_format)
            return count
        raise TypeError(f"request must be a gptoss.v1.CountTokensRequest, not {type(request).__name__}")
    return build_count_tokens_request(**options)
