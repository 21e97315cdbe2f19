"""Responses API objects: output items, the Response, and a whole Response from the client's fold."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

from gptoss import Completion, FinishReason, Usage

from gateway._finish import check_finish
from gateway._logprobs import tokens_json
from gateway._responses_schema import FunctionTool, ResponsesRequest
from gateway._translate_common import new_id

Json = dict[str, object]
ItemKind = Literal["reasoning", "message", "function_call"]
ID_PREFIX: dict[ItemKind, str] = {"reasoning": "rs_", "message": "msg_", "function_call": "fc_"}


def usage(u: Usage) -> Json:
    return {
        "input_tokens": u.prompt_tokens,
        "input_tokens_details": {"cached_tokens": u.cached_tokens, "cache_write_tokens": 0},
        "output_tokens": u.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
        "total_tokens": u.total_tokens,
    }


def output_text(text: str, logprobs: list[Json] | None = None) -> Json:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": logprobs or []}


def _tool_json(tool: FunctionTool) -> Json:
    return {
        "type": "function",
        "name": tool.name,
        "description": tool.description,
        "parameters": tool.parameters,
        "strict": tool.strict if tool.strict is not None else False,
    }


def _format_json(req: ResponsesRequest) -> Json:
    """The echoed `text.format` (stored with the response, as OpenAI keeps it): what was enforced."""
    fmt = req.text.format if req.text is not None else None
    if fmt is None or fmt.type != "json_schema":
        return {"type": fmt.type if fmt is not None else "text"}
    return {
        "type": "json_schema",
        "name": fmt.name,
        "description": fmt.description,
        "schema": fmt.json_schema,
        "strict": fmt.strict is not False,
    }


@dataclass
class Item:
    """An output item (under construction while streaming)."""

    kind: ItemKind
    output_index: int
    id: str
    text: str = ""
    call_id: str = ""
    name: str = ""
    status: str = "in_progress"
    logprobs: list[Json] = field(default_factory=list)  # a message's output_text tokens

    def json(self) -> Json:
        finished = self.status != "in_progress"
        if self.kind == "reasoning":
            return {
                "id": self.id,
                "type": "reasoning",
                "summary": [],
                "content": [{"type": "reasoning_text", "text": self.text}] if finished else [],
                "status": self.status,
            }
        if self.kind == "message":
            return {
                "id": self.id,
                "type": "message",
                "role": "assistant",
                "status": self.status,
                "content": [output_text(self.text, self.logprobs)] if finished else [],
            }
        return {
            "id": self.id,
            "type": "function_call",
            "call_id": self.call_id,
            "name": self.name,
            "arguments": self.text,
            "status": self.status,
        }


def response_object(
    req: ResponsesRequest,
    response_id: str,
    created_at: int,
    status: str,
    items: list[Item],
    used: Usage | None,
    *,
    stored: bool = False,
) -> Json:
    """The Response: the request's echoed settings plus what was generated (`store`: what happened)."""
    choice = req.tool_choice if req.tool_choice is not None else "auto"
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "completed_at": int(time.time()) if status == "completed" else None,
        "model": req.model,
        "output": [item.json() for item in items],
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
        "instructions": req.instructions,
        "max_output_tokens": req.max_output_tokens,
        "metadata": req.metadata or {},
        "parallel_tool_calls": req.parallel_tool_calls if req.parallel_tool_calls is not None else True,
        "previous_response_id": req.previous_response_id,
        "background": bool(req.background),
        "conversation": {"id": conversation_id(req.conversation)} if req.conversation is not None else None,
        "reasoning": {"effort": req.reasoning.effort if req.reasoning is not None else None, "summary": None},
        "store": stored,
        "temperature": req.temperature,
        "top_p": req.top_p,
        "text": {"format": _format_json(req)},
        "tool_choice": choice if isinstance(choice, str) else choice.model_dump(),
        "tools": [_tool_json(t) for t in req.tools or []],
        "truncation": "disabled",
        "usage": usage(used) if used is not None else None,
        "user": req.user,
    }


def conversation_id(conversation: str | dict[str, object] | None) -> str | None:
    """`conversation` is an id or `{"id": ...}`."""
    if conversation is None or isinstance(conversation, str):
        return conversation
    value = conversation.get("id")
    return value if isinstance(value, str) else None


def whole_response(
    req: ResponsesRequest, response_id: str, turn: Completion | None, *, stored: bool = False
) -> Json:
    """The non-streaming Response for a turn the client's fold collected (None: no Done came)."""
    ended = check_finish(turn)
    status = "incomplete" if ended.finish_reason is FinishReason.LENGTH else "completed"
    pieces: list[tuple[ItemKind, str, str, str]] = []
    if ended.reasoning:
        pieces.append(("reasoning", ended.reasoning, "", ""))
    if ended.content:
        pieces.append(("message", ended.content, "", ""))
    pieces += [("function_call", call.arguments, call.id, call.name) for call in ended.tool_calls]
    last = len(pieces) - 1  # as when streaming: a cut-off turn leaves only its last item incomplete
    items = [
        Item(
            kind,
            index,
            new_id(ID_PREFIX[kind]),
            text,
            call_id,
            name,
            status if index == last else "completed",
        )
        for index, (kind, text, call_id, name) in enumerate(pieces)
    ]
    for item in items:
        if item.kind == "message":
            item.logprobs = tokens_json(ended.content_logprobs)
    return response_object(req, response_id, int(time.time()), status, items, ended.usage, stored=stored)
