"""POST /v1/responses with state: history from previous_response_id or a conversation, the row
written before generation starts (a database that is down is a 503 and nothing runs), the final
Response stored after, and background responses handed to the detached runner."""

from __future__ import annotations

import logging
from collections.abc import Awaitable

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from gateway import _translate_responses
from gateway._errors import GatewayError, invalid_request
from gateway._generate import RESPONSES_ROUTE, Generation
from gateway._middleware import CallContext
from gateway._responses_background import Background, failure, output_of
from gateway._responses_events import ResponsesStream
from gateway._responses_items import Json, input_items, with_history
from gateway._responses_output import conversation_id, whole_response
from gateway._responses_schema import ResponsesRequest
from gateway._translate_common import new_id
from gateway.store import NotFound, NotReady, Store, StoreUnavailable

log = logging.getLogger("gateway")
ROUTE = RESPONSES_ROUTE


def owner_of(request: Request) -> str:
    """Who owns what this request stores: the API key's fingerprint ("" with keys off)."""
    call: CallContext = request.state.call
    return call.identity or ""


class StatefulResponses:
    def __init__(self, generation: Generation, store: Store | None, background: Background | None) -> None:
        self.generation = generation
        self.store = store
        self.background = background
        self.running: set[str] = set()  # ids this gateway is generating (heartbeats keep them alive)

    def _refuse(self, body: ResponsesRequest) -> None:
        off = "this gateway runs without a response store (started with --no-store)"
        if self.store is None:
            for name, value in (
                ("previous_response_id", body.previous_response_id),
                ("conversation", body.conversation),
                ("background", body.background or None),
            ):
                if value is not None:
                    raise invalid_request(f"{name} needs stored responses, but {off}", name)
        if body.previous_response_id is not None and body.conversation is not None:
            raise invalid_request(
                "previous_response_id and conversation cannot both be given", "previous_response_id"
            )
        if body.background and body.store is False:
            raise invalid_request("background responses must be stored: send store=true", "background")
        if body.conversation is not None and conversation_id(body.conversation) is None:
            raise invalid_request('conversation must be an id or {"id": ...}', "conversation")

    async def _history(self, body: ResponsesRequest, owner: str) -> list[Json]:
        assert self.store is not None
        try:
            if body.previous_response_id is not None:
                return await self.store.responses.chain_items(body.previous_response_id, owner)
            conv = conversation_id(body.conversation)
            if conv is not None:
                return await self.store.conversations.items(conv, owner)
        except NotFound as exc:
            param = "previous_response_id" if body.previous_response_id is not None else "conversation"
            raise GatewayError(404, str(exc), param=param, code="not_found") from None
        except NotReady as exc:
            raise invalid_request(str(exc), "previous_response_id") from None
        return []

    async def create(self, request: Request, body: ResponsesRequest) -> Response:
        self._refuse(body)
        owner = owner_of(request)
        stateful = body.previous_response_id is not None or body.conversation is not None
        history = await self._history(body, owner) if stateful else []
        options = _translate_responses.to_generate_options(with_history(body, history) if stateful else body)
        store = self.store if body.store is not False else None
        response_id = new_id("resp_")
        machine = ResponsesStream(body, response_id, stored=store is not None)
        items = input_items(body)
        if store is not None:
            await store.responses.create(
                machine.snapshot(),
                owner=owner,
                input_items=items,
                background=bool(body.background),
                conversation_id=conversation_id(body.conversation),
            )
        if body.background:
            assert self.background is not None and store is not None
            self.background.launch(machine, options, request.state.call, items)
            if body.stream:
                return self.background.replay(response_id, -1)
            return JSONResponse(machine.snapshot())
        if store is not None:
            self.running.add(response_id)
        try:
            running = await self.generation._start(
                options, request.state.call, ROUTE, stream=bool(body.stream)
            )
        except BaseException:
            self.running.discard(response_id)
            if store is not None:
                await _quietly(store.responses.forget(response_id))
            raise
        if body.stream:

            async def on_end(error: GatewayError | None) -> None:
                self.running.discard(response_id)
                assert store is not None
                final = machine.final if error is None else None
                final = final or failure(machine, error or GatewayError(502, "the stream ended early"))
                added = items + output_of(final) if error is None else []
                await _quietly(store.responses.finish(final, conversation_items_to_add=added))

            start = machine.start()
            return self.generation._stream(
                ROUTE, running, start, machine.on_event, named=True, on_end=on_end if store else None
            )
        try:
            fold = await self.generation._collect(request, ROUTE, running)
            response = whole_response(
                body, response_id, fold.result() if fold.done else None, stored=store is not None
            )
        except GatewayError as err:
            if store is not None:
                await _quietly(store.responses.finish(failure(machine, err)))
            raise
        finally:
            self.running.discard(response_id)
        if store is not None:
            response["created_at"] = machine.created_at
            await store.responses.finish(response, conversation_items_to_add=items + output_of(response))
        return JSONResponse(response)


async def _quietly(work: Awaitable[object]) -> None:
    """Store writes after the answer is decided: a store outage is logged (the sweep ends the row)."""
    try:
        await work
    except StoreUnavailable:
        log.warning("could not store the end of a response; the stale sweep will mark it failed")
