"""Chat Completions JSON <-> gptoss.v1 protos. Pure: no I/O, so it is tested with plain calls."""

from __future__ import annotations

from typing import Any

from gptoss.v1 import inference_pb2

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

_TEXT_PARTS = ("text",)


def _refuse_unsupported(req: ChatCompletionRequest) -> None:
    """Parameters we cannot honour are a clear 400, never silently ignored."""
    if req.n is not None and req.n > 1:
        raise invalid_request("n > 1 is not supported; send several requests instead", "n")
    if req.response_format is not None and req.response_format.type != "text":
        raise invalid_request(
            f"response_format {req.response_format.type!r} is not supported: this service has no structured output",
            "response_format",
        )
    if req.logprobs or req.top_logprobs:
        raise invalid_request("logprobs are not supported by this service", "logprobs")
    if req.logit_bias:
        raise invalid_request("logit_bias is not supported by this service", "logit_bias")
    if req.functions is not None or req.function_call is not None:
        raise invalid_request("legacy `functions`/`function_call` are not supported; use tools", "functions")
    if req.stream_options is not None and not req.stream:
        raise invalid_request("stream_options is only allowed with stream: true", "stream_options")


def _messages(req: ChatCompletionRequest) -> list[Any]:
    out: list[Any] = []
    call_names: dict[str, str] = {}
    for i, msg in enumerate(req.messages):
        param = f"messages[{i}].content"
        if isinstance(msg, SystemMessage | DeveloperMessage | UserMessage):
            role = {
                "system": inference_pb2.ROLE_SYSTEM,
                "developer": inference_pb2.ROLE_DEVELOPER,
                "user": inference_pb2.ROLE_USER,
            }[msg.role]
            out.append(
                inference_pb2.Message(role=role, content=common.text_of(msg.content, param, _TEXT_PARTS))
            )
        elif isinstance(msg, AssistantMessage):
            calls = []
            for call in msg.tool_calls or []:
                call_names[call.id] = call.function.name
                calls.append(
                    inference_pb2.ToolCall(
                        id=call.id, name=call.function.name, arguments=call.function.arguments
                    )
                )
            out.append(
                inference_pb2.Message(
                    role=inference_pb2.ROLE_ASSISTANT,
                    content=common.text_of(msg.content, param, (*_TEXT_PARTS, "refusal")),
                    reasoning=msg.reasoning_content or msg.reasoning or "",
                    tool_calls=calls,
                )
            )
        elif isinstance(msg, ToolMessage):
            out.append(
                inference_pb2.Message(
                    role=inference_pb2.ROLE_TOOL,
                    content=common.text_of(msg.content, param, _TEXT_PARTS),
                    tool_call_id=msg.tool_call_id,
                    name=msg.name or call_names.get(msg.tool_call_id, ""),
                )
            )
    return out


def to_generate_request(req: ChatCompletionRequest, request_id: str = "") -> Any:
    """The GenerateRequest for a chat completion request (raises GatewayError on what we refuse)."""
    return common.build(lambda: _to_generate_request(req, request_id))


def _to_generate_request(req: ChatCompletionRequest, request_id: str) -> Any:
    _refuse_unsupported(req)
    tools = [
        common.tool(
            t.function.name, t.function.description, t.function.parameters, f"tools[{i}].function.parameters"
        )
        for i, t in enumerate(req.tools or [])
    ]
    tool_names = {t.name for t in tools}
    named = (
        req.tool_choice.function.name
        if req.tool_choice is not None and not isinstance(req.tool_choice, str)
        else None
    )
    choice = common.tool_choice(
        req.tool_choice if isinstance(req.tool_choice, str) else None, named, tool_names, "tool_choice"
    )
    stop = [req.stop] if isinstance(req.stop, str) else list(req.stop or [])
    max_tokens = req.max_completion_tokens if req.max_completion_tokens is not None else req.max_tokens
    proto = inference_pb2.GenerateRequest(
        messages=_messages(req),
        tools=tools,
        reasoning_effort=common.effort(req.reasoning_effort),
        max_tokens=max_tokens,
        temperature=req.temperature,
        top_p=req.top_p,
        top_k=req.top_k,
        min_p=req.min_p,
        seed=req.seed,
        stop=stop,
        presence_penalty=req.presence_penalty,
        frequency_penalty=req.frequency_penalty,
        request_id=request_id,
        model=req.model,
        ignore_eos=req.ignore_eos,
    )
    if choice is not None:
        proto.tool_choice.CopyFrom(choice)
    return proto


def usage(done: Any) -> dict[str, Any]:
    u = done.usage
    return {
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.prompt_tokens + u.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
    }


def _tool_call_json(state: common.ToolCallState) -> dict[str, Any]:
    return {
        "id": state.id,
        "type": "function",
        "function": {"name": state.name, "arguments": state.arguments},
    }


def completion(turn: common.Turn, *, completion_id: str, created: int, model: str) -> dict[str, Any]:
    """The non-streaming `chat.completion` object for a finished turn."""
    common.check_finish(turn.done)
    calls = [_tool_call_json(s) for _, s in sorted(turn.tool_calls.items())]
    reasoning = turn.reasoning or None
    message: dict[str, Any] = {
        "role": "assistant",
        "content": turn.content if turn.content or not calls else None,
        "reasoning_content": reasoning,
        "reasoning": reasoning,
        "refusal": None,
    }
    if calls:
        message["tool_calls"] = calls
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": common.finish_reason(turn.done, bool(calls)),
                "logprobs": None,
            }
        ],
        "usage": usage(turn.done),
    }


class ChatStream:
    """Turns service events into `chat.completion.chunk` objects, one call per event."""

    def __init__(self, *, completion_id: str, created: int, model: str, include_usage: bool) -> None:
        self._base = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
        }
        self._include_usage = include_usage
        self._calls: dict[int, common.ToolCallState] = {}

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        chunk: dict[str, Any] = {
            **self._base,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}],
        }
        if self._include_usage:
            chunk["usage"] = None
        return chunk

    def start(self) -> dict[str, Any]:
        """The first chunk announces the role, as OpenAI's does."""
        return self._chunk({"role": "assistant", "content": ""})

    def on_event(self, event: Any) -> list[dict[str, Any]]:
        kind = event.WhichOneof("event")
        if kind == "reasoning":
            text = event.reasoning.text
            return [self._chunk({"reasoning_content": text, "reasoning": text})] if text else []
        if kind == "content":
            return [self._chunk({"content": event.content.text})] if event.content.text else []
        if kind == "tool_call":
            return self._tool_call(
                event.tool_call.index,
                event.tool_call.id,
                event.tool_call.name,
                event.tool_call.arguments_delta,
            )
        if kind == "tool_call_done":
            done = event.tool_call_done
            known = self._calls.get(done.index)
            sent = known.arguments if known is not None else ""
            # Arguments the deltas did not carry (a service that sends them only at the end).
            rest = done.arguments[len(sent) :] if done.arguments.startswith(sent) else ""
            if known is None or rest:
                return self._tool_call(done.index, done.id, done.name, rest)
            return []
        if kind == "done":
            return self._finish(event.done)
        return []

    def _tool_call(self, index: int, call_id: str, name: str, arguments: str) -> list[dict[str, Any]]:
        state = self._calls.get(index)
        entry: dict[str, Any] = {"index": index}
        if state is None:
            state = self._calls[index] = common.ToolCallState(id=call_id, name=name)
            entry.update(
                {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
            )
        elif arguments:
            entry["function"] = {"arguments": arguments}
        else:
            return []
        state.arguments += arguments
        return [self._chunk({"tool_calls": [entry]})]

    def _finish(self, done: Any) -> list[dict[str, Any]]:
        common.check_finish(done)
        chunks = [self._chunk({}, common.finish_reason(done, bool(self._calls)))]
        if self._include_usage:
            chunks.append({**self._base, "choices": [], "usage": usage(done)})
        return chunks
