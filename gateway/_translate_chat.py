"""Chat Completions JSON -> client options, and a whole turn -> `chat.completion`. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Sequence

from gptoss import Completion, GenerateOptions, ToolCall, Usage, total_usage

from gateway import _translate_common as common
from gateway._chat_schema import (
    AssistantMessage,
    ChatCompletionRequest,
    DeveloperMessage,
    SystemMessage,
    ToolMessage,
    UserMessage,
)
from gateway._errors import invalid_request
from gateway._finish import check_finish, finish_reason
from gateway._logprobs import chat_logprobs

_TEXT_PARTS = ("text",)
Json = dict[str, object]


def _refuse_unsupported(req: ChatCompletionRequest) -> None:
    """Parameters we cannot honour are a clear 400, never silently ignored."""
    if req.top_logprobs and not req.logprobs:
        raise invalid_request("top_logprobs needs logprobs: true", "top_logprobs")
    if req.functions is not None or req.function_call is not None:
        raise invalid_request("legacy `functions`/`function_call` are not supported; use tools", "functions")
    if req.stream_options is not None and not req.stream:
        raise invalid_request("stream_options is only allowed with stream: true", "stream_options")


def response_format(req: ChatCompletionRequest) -> common.FormatDict | None:
    """`response_format` for the client (None: plain text); the service checks and enforces it."""
    fmt = req.response_format
    if fmt is None or fmt.type == "text":
        return None
    if fmt.type == "json_object":
        return {"type": "json_object"}
    spec = fmt.json_schema
    if spec is None:
        raise invalid_request(
            "Missing required parameter: 'response_format.json_schema'.", "response_format.json_schema"
        )
    return common.json_schema_format(
        spec.name, spec.description, spec.json_schema, spec.strict, "response_format.json_schema"
    )


def logit_bias_ids(bias: dict[str, float] | None) -> dict[int, float] | None:
    """OpenAI's string keys -> token ids; the service checks the ids and ranges."""
    if not bias:
        return None
    try:
        ids = {int(token): value for token, value in bias.items()}
    except ValueError:
        raise invalid_request(
            "logit_bias keys must be token ids (integers as strings)", "logit_bias"
        ) from None
    if any(not 0 <= token < 2**31 for token in ids):
        raise invalid_request("logit_bias keys must be token ids (0 or more)", "logit_bias")
    return ids


def _messages(req: ChatCompletionRequest) -> list[common.MessageDict]:
    out: list[common.MessageDict] = []
    for i, msg in enumerate(req.messages):
        param = f"messages[{i}].content"
        if isinstance(msg, SystemMessage | DeveloperMessage | UserMessage):
            out.append({"role": msg.role, "content": common.text_of(msg.content, param, _TEXT_PARTS)})
        elif isinstance(msg, AssistantMessage):
            out.append(
                {
                    "role": "assistant",
                    "content": common.text_of(msg.content, param, (*_TEXT_PARTS, "refusal")),
                    "reasoning": msg.reasoning_content or msg.reasoning or "",
                    "tool_calls": [
                        {"id": c.id, "name": c.function.name, "arguments": c.function.arguments}
                        for c in msg.tool_calls or []
                    ],
                }
            )
        elif isinstance(msg, ToolMessage):
            # The service finds the tool's name from tool_call_id when `name` is absent.
            out.append(
                {
                    "role": "tool",
                    "content": common.text_of(msg.content, param, _TEXT_PARTS),
                    "tool_call_id": msg.tool_call_id,
                    "name": msg.name or "",
                }
            )
    return out


def to_generate_options(req: ChatCompletionRequest) -> GenerateOptions:
    """The client options of a chat completion request (raises GatewayError on what we refuse)."""
    _refuse_unsupported(req)
    named = (
        req.tool_choice.function.name
        if req.tool_choice is not None and not isinstance(req.tool_choice, str)
        else None
    )
    choice = common.tool_choice(req.tool_choice if isinstance(req.tool_choice, str) else None, named)
    options = GenerateOptions(
        messages=_messages(req),
        tools=[
            common.tool(t.function.name, t.function.description, t.function.parameters, t.function.strict)
            for t in req.tools or []
        ],
        reasoning_effort=req.reasoning_effort,
        tool_choice=choice,
        max_tokens=req.max_completion_tokens if req.max_completion_tokens is not None else req.max_tokens,
        temperature=req.temperature,
        top_p=req.top_p,
        top_k=req.top_k,
        min_p=req.min_p,
        seed=req.seed,
        stop=req.stop,
        presence_penalty=req.presence_penalty,
        frequency_penalty=req.frequency_penalty,
        model=req.model,
        ignore_eos=req.ignore_eos,
        logprobs=bool(req.logprobs),
        logit_bias=logit_bias_ids(req.logit_bias),
        n=req.n,
        top_logprobs=req.top_logprobs if req.logprobs else None,
        response_format=response_format(req),
        max_reasoning_tokens=req.max_reasoning_tokens,
    )
    return options


def usage(u: Usage) -> Json:
    return {
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.total_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
    }


def _tool_call_json(call: ToolCall) -> Json:
    return {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}


def _choice(turn: Completion | None, index: int, logprobs: bool) -> tuple[Json, Usage]:
    ended = check_finish(turn)
    calls = [_tool_call_json(call) for call in ended.tool_calls]
    reasoning = ended.reasoning or None
    message: Json = {
        "role": "assistant",
        "content": ended.content if ended.content or not calls else None,
        "reasoning_content": reasoning,
        "reasoning": reasoning,
        "refusal": None,
    }
    if calls:
        message["tool_calls"] = calls
    choice: Json = {
        "index": index,
        "message": message,
        "finish_reason": finish_reason(ended, bool(calls)),
        "logprobs": chat_logprobs(ended.content_logprobs) if logprobs else None,
    }
    return choice, ended.usage


def completion(
    turns: Sequence[Completion | None],
    *,
    completion_id: str,
    created: int,
    model: str,
    logprobs: bool = False,
) -> Json:
    """The non-streaming `chat.completion`: one choice per turn the client's fold collected
    (None: that choice got no Done); usage counts the prompt once."""
    choices = [_choice(turn, index, logprobs) for index, turn in enumerate(turns)]
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [choice for choice, _ in choices],
        "usage": usage(total_usage([used for _, used in choices])),
    }
