"""Responses API request JSON -> client options. Pure; answers are built in _responses_events/_output."""

from __future__ import annotations

from gptoss import GenerateOptions

from gateway import _translate_common as common
from gateway._errors import invalid_request
from gateway._responses_schema import (
    LOGPROBS_INCLUDE,
    FunctionCallItem,
    FunctionCallOutputItem,
    MessageItem,
    ReasoningItem,
    ResponsesRequest,
    wants_logprobs,
)

_INPUT_PARTS = ("input_text", "output_text", "text", "refusal")


def _refuse_unsupported(req: ResponsesRequest) -> None:
    if req.truncation == "auto":
        raise invalid_request("truncation 'auto' is not supported; long inputs are refused", "truncation")
    for index, value in enumerate(req.include or ()):
        if value != LOGPROBS_INCLUDE:
            raise invalid_request(
                f"include {value!r} is not supported; only {LOGPROBS_INCLUDE!r} is", f"include[{index}]"
            )
    common.check_text(req.metadata, "metadata")
    common.check_text(req.user, "user")


def text_format(req: ResponsesRequest) -> common.FormatDict | None:
    """`text.format` (the flat json_schema shape) for the client; None: plain text."""
    fmt = req.text.format if req.text is not None else None
    if fmt is None or fmt.type == "text":
        return None
    if fmt.type == "json_object":
        return {"type": "json_object"}
    return common.json_schema_format(fmt.name, fmt.description, fmt.json_schema, fmt.strict, "text.format")


def _messages(req: ResponsesRequest) -> list[common.MessageDict]:
    """Items to messages; consecutive reasoning / assistant text / function calls form one assistant turn."""
    out: list[common.MessageDict] = []
    if req.instructions:
        out.append({"role": "developer", "content": req.instructions})
    if isinstance(req.input, str):
        out.append({"role": "user", "content": req.input})
        return out
    turn: _Turn | None = None  # the assistant message being assembled

    def assistant() -> _Turn:
        nonlocal turn
        if turn is None:
            turn = _Turn()
            out.append(turn.message)
        return turn

    for i, item in enumerate(req.input):
        param = f"input[{i}]"
        if isinstance(item, ReasoningItem):
            if turn is not None and turn.answered:
                turn = None  # reasoning after an answer starts a new assistant message
            assistant().add_reasoning("".join(part.text for part in item.content or []))
        elif isinstance(item, MessageItem) and item.role == "assistant":
            if turn is not None and turn.answered:
                turn = None
            assistant().set_content(common.text_of(item.content, f"{param}.content", _INPUT_PARTS))
        elif isinstance(item, FunctionCallItem):
            assistant().add_call(item.call_id, item.name, item.arguments)
        elif isinstance(item, FunctionCallOutputItem):
            turn = None
            # The service finds the tool's name from tool_call_id.
            out.append(
                {
                    "role": "tool",
                    "content": common.text_of(item.output, f"{param}.output", _INPUT_PARTS),
                    "tool_call_id": item.call_id,
                }
            )
        elif isinstance(item, MessageItem):
            turn = None
            out.append(
                {"role": item.role, "content": common.text_of(item.content, f"{param}.content", _INPUT_PARTS)}
            )
        else:
            raise invalid_request(f"input item type {item.type!r} is not supported", f"{param}.type")
    return out


class _Turn:
    """One assistant message assembled from consecutive items."""

    def __init__(self) -> None:
        self.reasoning = ""
        self.content = ""
        self.calls: list[dict[str, str]] = []
        self.message: common.MessageDict = {
            "role": "assistant",
            "content": "",
            "reasoning": "",
            "tool_calls": self.calls,
        }

    @property
    def answered(self) -> bool:
        return bool(self.content or self.calls)

    def add_reasoning(self, text: str) -> None:
        self.reasoning += text
        self.message["reasoning"] = self.reasoning

    def set_content(self, text: str) -> None:
        self.content = text
        self.message["content"] = text

    def add_call(self, call_id: str, name: str, arguments: str) -> None:
        self.calls.append({"id": call_id, "name": name, "arguments": arguments})


def to_generate_options(req: ResponsesRequest) -> GenerateOptions:
    """The client options of a Responses request (raises GatewayError on what we refuse)."""
    _refuse_unsupported(req)
    named = (
        req.tool_choice.name if req.tool_choice is not None and not isinstance(req.tool_choice, str) else None
    )
    messages = _messages(req)
    if not any(m["role"] != "developer" for m in messages):
        raise invalid_request("input must contain at least one item", "input")
    return GenerateOptions(
        messages=messages,
        tools=[common.tool(t.name, t.description, t.parameters, t.strict) for t in req.tools or []],
        reasoning_effort=req.reasoning.effort if req.reasoning is not None else None,
        tool_choice=common.tool_choice(req.tool_choice if isinstance(req.tool_choice, str) else None, named),
        max_tokens=req.max_output_tokens,
        temperature=req.temperature,
        top_p=req.top_p,
        seed=req.seed,
        model=req.model,
        logprobs=wants_logprobs(req),
        top_logprobs=req.top_logprobs if wants_logprobs(req) else None,
        response_format=text_format(req),
        max_reasoning_tokens=req.max_reasoning_tokens,
    )
