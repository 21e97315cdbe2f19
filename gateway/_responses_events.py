"""Service events -> Responses API objects: one event machine builds both streamed and whole answers."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from gptoss.v1 import inference_pb2

from gateway import _translate_common as common
from gateway._responses_schema import ResponsesRequest


def usage(done: Any) -> dict[str, Any]:
    u = done.usage
    return {
        "input_tokens": u.prompt_tokens,
        "input_tokens_details": {"cached_tokens": u.cached_tokens, "cache_write_tokens": 0},
        "output_tokens": u.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
        "total_tokens": u.prompt_tokens + u.completion_tokens,
    }


def _tool_json(tool: Any) -> dict[str, Any]:
    return {
        "type": "function",
        "name": tool.name,
        "description": tool.description,
        "parameters": tool.parameters,
        "strict": tool.strict if tool.strict is not None else False,
    }


@dataclass
class _Item:
    """An output item under construction."""

    kind: str  # "reasoning" | "message" | "function_call"
    output_index: int
    id: str
    text: str = ""
    call_id: str = ""
    name: str = ""
    status: str = "in_progress"

    def json(self) -> dict[str, Any]:
        if self.kind == "reasoning":
            return {
                "id": self.id,
                "type": "reasoning",
                "summary": [],
                "content": [{"type": "reasoning_text", "text": self.text}]
                if self.status != "in_progress"
                else [],
                "status": self.status,
            }
        if self.kind == "message":
            return {
                "id": self.id,
                "type": "message",
                "role": "assistant",
                "status": self.status,
                "content": [_output_text(self.text)] if self.status != "in_progress" else [],
            }
        return {
            "id": self.id,
            "type": "function_call",
            "call_id": self.call_id,
            "name": self.name,
            "arguments": self.text,
            "status": self.status,
        }


def _output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


@dataclass
class ResponsesStream:
    """Service events -> Responses stream events (each with its sequence_number) and the final Response."""

    request: ResponsesRequest
    response_id: str
    created_at: int = field(default_factory=lambda: int(time.time()))
    final: dict[str, Any] | None = field(default=None, init=False)
    _seq: int = field(default=0, init=False)
    _items: list[_Item] = field(default_factory=list, init=False)
    _open: _Item | None = field(default=None, init=False)
    _calls: dict[int, _Item] = field(default_factory=dict, init=False)

    def response(self, status: str, done: Any = None) -> dict[str, Any]:
        req = self.request
        choice: Any = req.tool_choice if req.tool_choice is not None else "auto"
        incomplete = status == "incomplete"
        return {
            "id": self.response_id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "completed_at": int(time.time()) if status == "completed" else None,
            "model": req.model,
            "output": [item.json() for item in self._items],
            "error": None,
            "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
            "instructions": req.instructions,
            "max_output_tokens": req.max_output_tokens,
            "metadata": req.metadata or {},
            "parallel_tool_calls": req.parallel_tool_calls if req.parallel_tool_calls is not None else True,
            "previous_response_id": None,
            "reasoning": {
                "effort": req.reasoning.effort if req.reasoning is not None else None,
                "summary": None,
            },
            "store": False,
            "temperature": req.temperature,
            "top_p": req.top_p,
            "text": {"format": {"type": "text"}},
            "tool_choice": choice if isinstance(choice, str) else choice.model_dump(),
            "tools": [_tool_json(t) for t in req.tools or []],
            "truncation": "disabled",
            "usage": usage(done) if done is not None else None,
            "user": req.user,
        }

    def _event(self, type: str, **fields: Any) -> dict[str, Any]:
        event = {"type": type, "sequence_number": self._seq, **fields}
        self._seq += 1
        return event

    def start(self) -> list[dict[str, Any]]:
        snapshot = self.response("in_progress")
        return [
            self._event("response.created", response=snapshot),
            self._event("response.in_progress", response=snapshot),
        ]

    def _open_item(self, kind: str, prefix: str, call_id: str = "", name: str = "") -> list[dict[str, Any]]:
        events = self._close()
        item = _Item(kind, len(self._items), common.new_id(prefix), call_id=call_id, name=name)
        self._items.append(item)
        self._open = item
        events.append(
            self._event("response.output_item.added", output_index=item.output_index, item=item.json())
        )
        if kind == "reasoning":
            part = {"type": "reasoning_text", "text": ""}
        elif kind == "message":
            part = _output_text("")
        else:
            return events
        events.append(self._part_event("response.content_part.added", item, part))
        return events

    def _part_event(self, type: str, item: _Item, part: dict[str, Any]) -> dict[str, Any]:
        return self._event(type, item_id=item.id, output_index=item.output_index, content_index=0, part=part)

    def _close(self, status: str = "completed") -> list[dict[str, Any]]:
        item, self._open = self._open, None
        if item is None:
            return []
        item.status = status
        ref = {"item_id": item.id, "output_index": item.output_index}
        events: list[dict[str, Any]] = []
        if item.kind == "reasoning":
            events.append(self._event("response.reasoning_text.done", **ref, content_index=0, text=item.text))
            events.append(
                self._part_event(
                    "response.content_part.done", item, {"type": "reasoning_text", "text": item.text}
                )
            )
        elif item.kind == "message":
            events.append(
                self._event("response.output_text.done", **ref, content_index=0, text=item.text, logprobs=[])
            )
            events.append(self._part_event("response.content_part.done", item, _output_text(item.text)))
        else:
            events.append(
                self._event(
                    "response.function_call_arguments.done", **ref, name=item.name, arguments=item.text
                )
            )
        events.append(
            self._event("response.output_item.done", output_index=item.output_index, item=item.json())
        )
        return events

    def on_event(self, event: Any) -> list[dict[str, Any]]:
        kind = event.WhichOneof("event")
        if kind == "reasoning" and event.reasoning.text:
            return self._text("reasoning", "rs_", "response.reasoning_text.delta", event.reasoning.text)
        if kind == "content" and event.content.text:
            return self._text("message", "msg_", "response.output_text.delta", event.content.text)
        if kind == "tool_call":
            d = event.tool_call
            return self._arguments(d.index, d.id, d.name, d.arguments_delta)
        if kind == "tool_call_done":
            d = event.tool_call_done
            item = self._calls.get(d.index)
            sent = item.text if item is not None else ""
            rest = d.arguments[len(sent) :] if d.arguments.startswith(sent) else ""
            events = self._arguments(d.index, d.id, d.name, rest)
            if self._open is not None and self._open is self._calls.get(d.index):
                events += self._close()
            return events
        if kind == "done":
            return self._finish(event.done)
        return []

    def _text(self, kind: str, prefix: str, delta_type: str, text: str) -> list[dict[str, Any]]:
        events = [] if self._open is not None and self._open.kind == kind else self._open_item(kind, prefix)
        item = self._open
        assert item is not None
        item.text += text
        extra: dict[str, Any] = {"logprobs": []} if kind == "message" else {}
        events.append(
            self._event(
                delta_type,
                item_id=item.id,
                output_index=item.output_index,
                content_index=0,
                delta=text,
                **extra,
            )
        )
        return events

    def _arguments(self, index: int, call_id: str, name: str, delta: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        item = self._calls.get(index)
        if item is None:
            events = self._open_item("function_call", "fc_", call_id, name)
            item = self._open
            assert item is not None
            self._calls[index] = item
        if delta:
            item.text += delta
            events.append(
                self._event(
                    "response.function_call_arguments.delta",
                    item_id=item.id,
                    output_index=item.output_index,
                    delta=delta,
                )
            )
        return events

    def _finish(self, done: Any) -> list[dict[str, Any]]:
        common.check_finish(done)
        incomplete = done.finish_reason == inference_pb2.FINISH_REASON_LENGTH
        events = self._close("incomplete" if incomplete else "completed")
        status = "incomplete" if incomplete else "completed"
        self.final = self.response(status, done)
        events.append(self._event(f"response.{status}", response=self.final))
        return events
