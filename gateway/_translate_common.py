"""Pure pieces both APIs share: tools, effort, finish reasons, and a whole turn collected from events."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import struct_pb2
from gptoss.v1 import inference_pb2

from gateway._errors import GatewayError, invalid_request

EFFORTS: dict[str, Any] = {
    "low": inference_pb2.REASONING_EFFORT_LOW,
    "medium": inference_pb2.REASONING_EFFORT_MEDIUM,
    "high": inference_pb2.REASONING_EFFORT_HIGH,
}

TOOL_CHOICE_MODES: dict[str, Any] = {
    "auto": inference_pb2.TOOL_CHOICE_MODE_AUTO,
    "none": inference_pb2.TOOL_CHOICE_MODE_NONE,
    "required": inference_pb2.TOOL_CHOICE_MODE_REQUIRED,
}


def new_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex}"


def effort(value: str | None) -> Any:
    return EFFORTS[value] if value is not None else inference_pb2.REASONING_EFFORT_UNSPECIFIED


def tool(name: str, description: str | None, parameters: dict[str, Any] | None, param: str) -> Any:
    """A proto Tool; the schema must at least be an object (the service checks the rest)."""
    proto = inference_pb2.Tool(name=name, description=description or "")
    if parameters is not None:
        try:
            json.dumps(parameters, allow_nan=False)  # NaN and Infinity are not JSON
            struct = struct_pb2.Struct()
            struct.update(parameters)
        except (TypeError, ValueError) as exc:
            raise invalid_request(f"tool parameters are not a JSON object schema: {exc}", param) from exc
        proto.parameters.CopyFrom(struct)
    return proto


def build(make: Callable[[], Any]) -> Any:
    """Run a proto constructor; text protobuf cannot encode (lone surrogates from JSON) is a 400."""
    try:
        return make()
    except UnicodeEncodeError as exc:
        raise invalid_request(f"the request contains text that is not valid Unicode: {exc.reason}") from exc


def check_text(value: Any, param: str) -> None:
    """Fields only echoed back (never sent to the service) must still be encodable as UTF-8."""
    try:
        json.dumps(value, ensure_ascii=False, allow_nan=False).encode()
    except (UnicodeEncodeError, ValueError) as exc:
        raise invalid_request(f"{param} is not valid JSON text", param) from exc


def tool_choice(choice: str | None, function_name: str | None, tool_names: set[str], param: str) -> Any:
    """The proto ToolChoice; a named function must be one of the declared tools."""
    if function_name is not None:
        if function_name not in tool_names:
            raise invalid_request(
                f"tool_choice names function {function_name!r}, which is not in tools", param
            )
        return inference_pb2.ToolChoice(
            mode=inference_pb2.TOOL_CHOICE_MODE_FUNCTION, function_name=function_name
        )
    if choice is None:
        return None
    if choice == "required" and not tool_names:
        raise invalid_request("tool_choice 'required' needs at least one tool", param)
    return inference_pb2.ToolChoice(mode=TOOL_CHOICE_MODES[choice])


def text_of(parts: str | list[Any] | None, param: str, accepted: tuple[str, ...]) -> str:
    """Text of string-or-parts content; non-text parts (images, audio, files) are refused clearly."""
    if parts is None:
        return ""
    if isinstance(parts, str):
        return parts
    texts: list[str] = []
    for index, part in enumerate(parts):
        if part.type not in accepted or part.text is None:
            raise invalid_request(
                f"content part type {part.type!r} is not supported; only {', '.join(accepted)} parts are",
                f"{param}[{index}].type",
            )
        texts.append(part.text)
    return "\n".join(texts)


@dataclass
class ToolCallState:
    id: str = ""
    name: str = ""
    arguments: str = ""


@dataclass
class Turn:
    """One assistant turn as the events built it; what non-streaming answers are made from."""

    reasoning: str = ""
    content: str = ""
    tool_calls: dict[int, ToolCallState] = field(default_factory=dict)
    done: Any = None

    def add(self, event: Any) -> None:
        kind = event.WhichOneof("event")
        if kind == "reasoning":
            self.reasoning += event.reasoning.text
        elif kind == "content":
            self.content += event.content.text
        elif kind == "tool_call":
            delta = event.tool_call
            state = self.tool_calls.setdefault(delta.index, ToolCallState())
            state.id = state.id or delta.id
            state.name = state.name or delta.name
            state.arguments += delta.arguments_delta
        elif kind == "tool_call_done":
            done = event.tool_call_done
            state = self.tool_calls.setdefault(done.index, ToolCallState())
            state.id = done.id or state.id
            state.name = done.name or state.name
            state.arguments = done.arguments
        elif kind == "done":
            self.done = event.done


def check_finish(done: Any) -> None:
    """A stream that ended without a usable turn becomes an error for the caller."""
    if done is None:
        raise GatewayError(502, "the service ended the stream without a done event", type="server_error")
    if done.finish_reason == inference_pb2.FINISH_REASON_CANCELLED:
        raise GatewayError(
            503,
            done.error_message or "the request was cancelled by the service",
            type="server_error",
            code="cancelled",
            retry_after=1,
        )
    if done.finish_reason == inference_pb2.FINISH_REASON_ERROR:
        raise GatewayError(
            500, done.error_message or "the model output could not be processed", type="server_error"
        )


def finish_reason(done: Any, saw_tool_calls: bool) -> str:
    """OpenAI's finish_reason: length wins; otherwise a turn that made calls reports tool_calls."""
    if done.finish_reason == inference_pb2.FINISH_REASON_LENGTH:
        return "length"
    if done.finish_reason == inference_pb2.FINISH_REASON_TOOL_CALLS or saw_tool_calls:
        return "tool_calls"
    return "stop"
