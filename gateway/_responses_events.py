"""The Responses stream fold: typed service events -> Responses stream events and the final Response."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from gptoss import ContentDelta, Done, Event, FinishReason, ReasoningDelta, ToolCallDelta, ToolCallDone
from gptoss.result import unsent_arguments

from gateway._finish import check_finish
from gateway._logprobs import tokens_json
from gateway._responses_output import ID_PREFIX, Item, ItemKind, Json, output_text, response_object
from gateway._responses_schema import ResponsesRequest
from gateway._translate_common import new_id


@dataclass
class ResponsesStream:
    """Each event becomes stream events (each with its sequence_number); `final` is the last Response."""

    request: ResponsesRequest
    response_id: str
    created_at: int = field(default_factory=lambda: int(time.time()))
    stored: bool = False
    final: Json | None = field(default=None, init=False)
    _seq: int = field(default=0, init=False)
    _items: list[Item] = field(default_factory=list, init=False)
    _open: Item | None = field(default=None, init=False)
    _calls: dict[int, Item] = field(default_factory=dict, init=False)

    def _event(self, type: str, **fields: object) -> Json:
        event: Json = {"type": type, "sequence_number": self._seq, **fields}
        self._seq += 1
        return event

    def _response(self, status: str, done: Done | None = None) -> Json:
        used = done.usage if done is not None else None
        return response_object(
            self.request, self.response_id, self.created_at, status, self._items, used, stored=self.stored
        )

    def snapshot(self, status: str = "in_progress", error: Json | None = None) -> Json:
        """The Response as it stands (background polling; a failed or cancelled end)."""
        response = self._response(status)
        if error is not None:
            response["error"] = error
        return response

    @property
    def sequence_number(self) -> int:
        return self._seq

    def event(self, type: str, **fields: object) -> Json:
        """An event outside the fold (a background response's failure or cancellation)."""
        return self._event(type, **fields)

    def start(self) -> list[Json]:
        snapshot = self._response("in_progress")
        return [
            self._event("response.created", response=snapshot),
            self._event("response.in_progress", response=snapshot),
        ]

    def on_event(self, event: Event) -> list[Json]:
        if isinstance(event, ReasoningDelta) and event.text:
            return self._text("reasoning", "response.reasoning_text.delta", event.text)
        if isinstance(event, ContentDelta) and (event.text or event.logprobs):
            return self._text(
                "message", "response.output_text.delta", event.text, tokens_json(event.logprobs)
            )
        if isinstance(event, ToolCallDelta):
            return self._arguments(event.index, event.id, event.name, event.arguments_delta)
        if isinstance(event, ToolCallDone):
            item = self._calls.get(event.index)
            events = self._arguments(
                event.index, event.id, event.name, unsent_arguments(item.text if item else "", event)
            )
            if self._open is not None and self._open is self._calls.get(event.index):
                events += self._close()
            return events
        if isinstance(event, Done):
            return self._finish(event)
        return []

    def _open_item(self, kind: ItemKind, call_id: str = "", name: str = "") -> list[Json]:
        events = self._close()
        item = Item(kind, len(self._items), new_id(ID_PREFIX[kind]), call_id=call_id, name=name)
        self._items.append(item)
        self._open = item
        events.append(
            self._event("response.output_item.added", output_index=item.output_index, item=item.json())
        )
        if kind == "reasoning":
            events.append(
                self._part_event("response.content_part.added", item, {"type": "reasoning_text", "text": ""})
            )
        elif kind == "message":
            events.append(self._part_event("response.content_part.added", item, output_text("")))
        return events

    def _part_event(self, type: str, item: Item, part: Json) -> Json:
        return self._event(type, item_id=item.id, output_index=item.output_index, content_index=0, part=part)

    def _close(self, status: str = "completed") -> list[Json]:
        item, self._open = self._open, None
        if item is None:
            return []
        item.status = status
        ref: Json = {"item_id": item.id, "output_index": item.output_index}
        events: list[Json] = []
        if item.kind == "reasoning":
            events.append(self._event("response.reasoning_text.done", **ref, content_index=0, text=item.text))
            events.append(
                self._part_event(
                    "response.content_part.done", item, {"type": "reasoning_text", "text": item.text}
                )
            )
        elif item.kind == "message":
            events.append(
                self._event(
                    "response.output_text.done",
                    **ref,
                    content_index=0,
                    text=item.text,
                    logprobs=item.logprobs,
                )
            )
            part = output_text(item.text, item.logprobs)
            events.append(self._part_event("response.content_part.done", item, part))
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

    def _text(
        self, kind: ItemKind, delta_type: str, text: str, logprobs: list[Json] | None = None
    ) -> list[Json]:
        events = [] if self._open is not None and self._open.kind == kind else self._open_item(kind)
        item = self._open
        assert item is not None
        item.text += text
        item.logprobs += logprobs or []
        extra: Json = {"logprobs": logprobs or []} if kind == "message" else {}
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

    def _arguments(self, index: int, call_id: str, name: str, delta: str) -> list[Json]:
        events: list[Json] = []
        item = self._calls.get(index)
        if item is None:
            events = self._open_item("function_call", call_id, name)
            item = self._calls[index] = self._items[-1]
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

    def _finish(self, done: Done) -> list[Json]:
        check_finish(done)
        status = "incomplete" if done.finish_reason is FinishReason.LENGTH else "completed"
        events = self._close(status)
        self.final = self._response(status, done)
        events.append(self._event(f"response.{status}", response=self.final))
        return events
