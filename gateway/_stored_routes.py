"""Routes over stored objects: a response (get, delete, input items, cancel, replay) and the
Conversations API. Objects of another API key answer 404, exactly as absent ones do: the store
raises `NotFound` for both, and the app's one handler for it answers 404 (gateway/app.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from gateway._errors import ErrorBody, invalid_request
from gateway._responses_background import Background
from gateway._responses_items import items_json
from gateway._responses_schema import InputItem
from gateway._responses_state import owner_of
from gateway._translate_common import check_text, new_id
from gateway.store import TERMINAL, Store

Json = dict[str, Any]
Order = Literal["asc", "desc"]
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in (
        (400, "Invalid request"),
        (401, "Missing or wrong API key"),
        (404, "No such object for this API key"),
        (413, "Request body too large"),
        (500, "Internal error"),
        (503, "The response store is unavailable; see Retry-After"),
    )
}


class ConversationCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    items: list[InputItem] | None = Field(default=None, max_length=20)
    metadata: dict[str, str] | None = None


class ConversationUpdate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    metadata: dict[str, str]


class ItemsCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    items: list[InputItem] = Field(min_length=1, max_length=20)


def page(items: list[Json], *, after: str | None, before: str | None, limit: int, order: Order) -> Json:
    """OpenAI's list shape over items in stored (oldest-first) order, with item-id cursors."""
    ordered = items if order == "asc" else list(reversed(items))
    ids = [item.get("id") for item in ordered]
    for cursor, param in ((after, "after"), (before, "before")):
        if cursor is not None and cursor not in ids:
            raise invalid_request(f"No item with id '{cursor}' to page from.", param)
    start = ids.index(after) + 1 if after is not None else 0
    end = ids.index(before) if before is not None else len(ordered)
    window = ordered[start:end]
    data = window[:limit]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": len(window) > limit,
    }


def _items(items: list[InputItem], param: str) -> list[Json]:
    """Only item kinds a response can render may be stored (others would fail every later turn)."""
    for index, item in enumerate(items):
        if item.type not in ("message", "function_call", "function_call_output", "reasoning"):
            raise invalid_request(f"item type {item.type!r} is not supported", f"{param}[{index}].type")
    return items_json(items)


def no_store_routes() -> APIRouter:
    """Without a store every stateful path is a clear 400, not a bare 404."""
    router = APIRouter(tags=["openai"])

    @router.api_route("/v1/responses/{rest:path}", methods=["GET", "POST", "DELETE"], include_in_schema=False)
    @router.api_route(
        "/v1/conversations{rest:path}", methods=["GET", "POST", "DELETE"], include_in_schema=False
    )
    async def refuse(rest: str) -> None:
        raise invalid_request("stored responses and conversations are off: this gateway runs with --no-store")

    return router


def stored_routes(store: Store, get_background: Callable[[], Background]) -> APIRouter:
    """The routes; the background runner exists only once the app serves (it needs the loop)."""
    router = APIRouter(tags=["openai"], responses=ERRORS)
    responses, conversations = store.responses, store.conversations

    @router.get(
        "/v1/responses/{response_id}",
        response_model=None,
        responses={
            200: {
                "description": "The response, or with stream=true an SSE stream",
                "content": {"text/event-stream": {}},
            }
        },
    )
    async def get_response(
        request: Request, response_id: str, stream: bool = False, starting_after: int = Query(-1, ge=-1)
    ) -> Response:
        """A stored response; with stream=true a background response's events after starting_after."""
        stored = await responses.get(response_id, owner_of(request))
        if stream:
            if not stored.background:
                raise invalid_request("only background responses can be streamed again", "stream")
            return get_background().replay(response_id, starting_after)
        return JSONResponse(stored.response)

    @router.delete("/v1/responses/{response_id}")
    async def delete_response(request: Request, response_id: str) -> Json:
        await responses.delete(response_id, owner_of(request))
        get_background().cancel_local(response_id)
        return {"id": response_id, "object": "response.deleted", "deleted": True}

    @router.get("/v1/responses/{response_id}/input_items")
    async def input_items(
        request: Request,
        response_id: str,
        after: str | None = None,
        before: str | None = None,
        limit: int = Query(20, ge=1, le=100),
        order: Order = "desc",
    ) -> Json:
        stored = await responses.get(response_id, owner_of(request))
        return page(stored.input_items, after=after, before=before, limit=limit, order=order)

    @router.post("/v1/responses/{response_id}/cancel")
    async def cancel(request: Request, response_id: str) -> Json:
        owner = owner_of(request)
        stored = await responses.get(response_id, owner)
        if not stored.background:
            raise invalid_request("Only responses created with background=true can be cancelled.")
        if stored.status in TERMINAL:
            return stored.response
        cancelled = {**stored.response, "status": "cancelled"}
        if not await responses.cancel(response_id, owner, cancelled):
            return (await responses.get(response_id, owner)).response
        get_background().cancel_local(response_id)
        return cancelled

    @router.post("/v1/conversations")
    async def create_conversation(request: Request, body: ConversationCreate) -> Json:
        check_text(body.metadata, "metadata")
        items = _items(body.items or [], "items")
        return await conversations.create(new_id("conv_"), owner_of(request), body.metadata or {}, items)

    @router.get("/v1/conversations/{conversation_id}")
    async def get_conversation(request: Request, conversation_id: str) -> Json:
        return await conversations.get(conversation_id, owner_of(request))

    @router.post("/v1/conversations/{conversation_id}")
    async def update_conversation(request: Request, conversation_id: str, body: ConversationUpdate) -> Json:
        check_text(body.metadata, "metadata")
        return await conversations.update(conversation_id, owner_of(request), body.metadata)

    @router.delete("/v1/conversations/{conversation_id}")
    async def delete_conversation(request: Request, conversation_id: str) -> Json:
        await conversations.delete(conversation_id, owner_of(request))
        return {"id": conversation_id, "object": "conversation.deleted", "deleted": True}

    @router.get("/v1/conversations/{conversation_id}/items")
    async def list_items(
        request: Request,
        conversation_id: str,
        after: str | None = None,
        limit: int = Query(20, ge=1, le=100),
        order: Order = "desc",
    ) -> Json:
        items = await conversations.items(conversation_id, owner_of(request))
        return page(items, after=after, before=None, limit=limit, order=order)

    @router.post("/v1/conversations/{conversation_id}/items")
    async def add_items(request: Request, conversation_id: str, body: ItemsCreate) -> Json:
        items = _items(body.items, "items")
        await conversations.add_items(conversation_id, owner_of(request), items)
        return page(items, after=None, before=None, limit=len(items), order="asc")

    @router.get("/v1/conversations/{conversation_id}/items/{item_id}")
    async def get_item(request: Request, conversation_id: str, item_id: str) -> Json:
        return await conversations.get_item(conversation_id, item_id, owner_of(request))

    @router.delete("/v1/conversations/{conversation_id}/items/{item_id}")
    async def delete_item(request: Request, conversation_id: str, item_id: str) -> Json:
        return await conversations.delete_item(conversation_id, item_id, owner_of(request))

    return router
