"""Responses API request JSON -> GenerateRequest. Pure; the answers are built in _responses_events."""

from __future__ import annotations

from typing import Any

from gptoss.v1 import inference_pb2

from gateway import _translate_common as common
from gateway._errors import invalid_request
from gateway._responses_schema import (
    FunctionCallItem,
    FunctionCallOutputItem,
    MessageItem,
    ReasoningItem,
    ResponsesRequest,
)

_ROLES = {
    "user": inference_pb2.ROLE_USER,
    "system": inference_pb2.ROLE_SYSTEM,
    "developer": inference_pb2.ROLE_DEVELOPER,
}
_INPUT_PARTS = ("input_text", "output_text", "text", "refusal")


def _refuse_unsupported(req: ResponsesRequest) -> None:
    if req.previous_response_id is not None:
        raise invalid_request(
            "previous_response_id is not supported: this gateway stores no responses; send the whole "
            "conversation in `input`",
            "previous_response_id",
        )
    if req.conversation is not None:
        raise invalid_request(
            "conversation is not supported: send the whole conversation in `input`", "conversation"
        )
    if req.background:
        raise invalid_request("background responses are not supported", "background")
    if req.text is not None and req.text.format is not None and req.text.format.type != "text":
        raise invalid_request(
            f"text.format {req.text.format.type!r} is not supported: this service has no structured output",
            "text.format",
        )
    if req.truncation == "auto":
        raise invalid_request("truncation 'auto' is not supported; long inputs are refused", "truncation")
    if req.top_logprobs:
        raise invalid_request("logprobs are not supported by this service", "top_logprobs")
    common.check_text(req.metadata, "metadata")
    common.check_text(req.user, "user")


def _messages(req: ResponsesRequest) -> list[Any]:
    """Items to messages; consecutive reasoning / assistant text / function calls form one assistant turn."""
    out: list[Any] = []
    if req.instructions:
        out.append(inference_pb2.Message(role=inference_pb2.ROLE_DEVELOPER, content=req.instructions))
    if isinstance(req.input, str):
        out.append(inference_pb2.Message(role=inference_pb2.ROLE_USER, content=req.input))
        return out
    turn: Any = None  # the assistant message being assembled
    call_names: dict[str, str] = {}

    def assistant() -> Any:
        nonlocal turn
        if turn is None:
            turn = inference_pb2.Message(role=inference_pb2.ROLE_ASSISTANT)
            out.append(turn)
        return turn

    for i, item in enumerate(req.input):
        param = f"input[{i}]"
        if isinstance(item, ReasoningItem):
            text = "".join(part.text for part in item.content or [])
            if turn is not None and (turn.content or turn.tool_calls):
                turn = None  # reasoning after an answer starts a new assistant message
            assistant().reasoning += text
        elif isinstance(item, MessageItem) and item.role == "assistant":
            if turn is not None and (turn.content or turn.tool_calls):
                turn = None
            assistant().content = common.text_of(item.content, f"{param}.content", _INPUT_PARTS)
        elif isinstance(item, FunctionCallItem):
            call_names[item.call_id] = item.name
            assistant().tool_calls.append(
                inference_pb2.ToolCall(id=item.call_id, name=item.name, arguments=item.arguments)
            )
        elif isinstance(item, FunctionCallOutputItem):
            turn = None
            out.append(
                inference_pb2.Message(
                    role=inference_pb2.ROLE_TOOL,
                    content=common.text_of(item.output, f"{param}.output", _INPUT_PARTS),
                    tool_call_id=item.call_id,
                    name=call_names.get(item.call_id, ""),
                )
            )
        elif isinstance(item, MessageItem):
            turn = None
            out.append(
                inference_pb2.Message(
                    role=_ROLES[item.role],
                    content=common.text_of(item.content, f"{param}.content", _INPUT_PARTS),
                )
            )
        else:
            raise invalid_request(f"input item type {item.type!r} is not supported", f"{param}.type")
    return out


def to_generate_request(req: ResponsesRequest, request_id: str = "") -> Any:
    """The GenerateRequest for a Responses request (raises GatewayError on what we refuse)."""
    return common.build(lambda: _to_generate_request(req, request_id))


def _to_generate_request(req: ResponsesRequest, request_id: str) -> Any:
    _refuse_unsupported(req)
    tools = [
        common.tool(t.name, t.description, t.parameters, f"tools[{i}].parameters")
        for i, t in enumerate(req.tools or [])
    ]
    named = (
        req.tool_choice.name if req.tool_choice is not None and not isinstance(req.tool_choice, str) else None
    )
    choice = common.tool_choice(
        req.tool_choice if isinstance(req.tool_choice, str) else None,
        named,
        {t.name for t in tools},
        "tool_choice",
    )
    messages = _messages(req)
    if not any(m.role != inference_pb2.ROLE_DEVELOPER for m in messages):
        raise invalid_request("input must contain at least one item", "input")
    proto = inference_pb2.GenerateRequest(
        messages=messages,
        tools=tools,
        reasoning_effort=common.effort(req.reasoning.effort if req.reasoning is not None else None),
        max_tokens=req.max_output_tokens,
        temperature=req.temperature,
        top_p=req.top_p,
        seed=req.seed,
        request_id=request_id,
        model=req.model,
    )
    if choice is not None:
        proto.tool_choice.CopyFrom(choice)
    return proto
