"""Items as they are stored: a request's input as OpenAI item objects (with ids), and stored items
(history of a chain or a conversation) back as request items, so one translation renders both."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter, ValidationError

from gateway._errors import invalid_request
from gateway._responses_schema import InputItem, MessageItem, ResponsesRequest
from gateway._translate_common import new_id

Json = dict[str, Any]
_ITEMS: TypeAdapter[list[InputItem]] = TypeAdapter(list[InputItem])
_PREFIX = {"message": "msg_", "function_call": "fc_", "function_call_output": "fco_", "reasoning": "rs_"}


def _item_json(item: InputItem) -> Json:
    out: Json = item.model_dump(exclude_none=True)
    out.setdefault("id", new_id(_PREFIX.get(item.type, "item_")))
    if isinstance(item, MessageItem):
        kind = "output_text" if item.role == "assistant" else "input_text"
        if isinstance(item.content, str):
            out["content"] = [{"type": kind, "text": item.content}]
        out.setdefault("status", "completed")
    return out


def input_items(req: ResponsesRequest) -> list[Json]:
    """The request's `input` as stored and listed by GET /v1/responses/{id}/input_items."""
    if isinstance(req.input, str):
        return [
            {
                "id": new_id("msg_"),
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": req.input}],
                "status": "completed",
            }
        ]
    return items_json(req.input)


def items_json(items: list[InputItem]) -> list[Json]:
    return [_item_json(item) for item in items]


def parse_items(items: list[Json], param: str) -> list[InputItem]:
    try:
        return _ITEMS.validate_python(items)
    except ValidationError as exc:
        raise invalid_request(f"invalid items: {exc.errors()[0]['msg']}", param) from exc


def with_history(req: ResponsesRequest, history: list[Json]) -> ResponsesRequest:
    """The request the service sees: stored history, then this request's input; no stateful fields."""
    items = parse_items(history, "input")
    items += [MessageItem(role="user", content=req.input)] if isinstance(req.input, str) else list(req.input)
    return req.model_copy(
        update={"input": items, "previous_response_id": None, "conversation": None, "background": None}
    )
