"""Stored responses: create before generating, finish after, read by owner, walk chains, events."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.store._engine import guard, transaction
from gateway.store._tables import conversation_items, response_events, responses

Json = dict[str, Any]
TERMINAL = ("completed", "incomplete", "failed", "cancelled")
MAX_CHAIN = 1000  # a previous_response_id chain deeper than this is refused (cycles cannot form)


class NotFound(Exception):
    """No such object for this owner (others' objects are reported the same way: no leak)."""


class NotReady(Exception):
    """A chain cannot continue a response that is still being generated."""


@dataclass(frozen=True)
class StoredResponse:
    id: str
    status: str
    background: bool
    previous_response_id: str | None
    conversation_id: str | None
    input_items: list[Json]
    response: Json


def _row(row: sa.Row[Any]) -> StoredResponse:
    return StoredResponse(
        row.id,
        row.status,
        row.background,
        row.previous_response_id,
        row.conversation_id,
        list(row.input_items),
        dict(row.response),
    )


class ResponseStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def create(
        self,
        response: Json,
        *,
        owner: str,
        input_items: list[Json],
        background: bool,
        conversation_id: str | None,
    ) -> None:
        """The in_progress row, written before generation starts (so a failure here starts nothing)."""
        now = time.time()
        async with transaction(self.engine) as conn:
            await conn.execute(
                responses.insert().values(
                    id=response["id"],
                    owner=owner,
                    status=response["status"],
                    background=background,
                    created_at=now,
                    heartbeat_at=now,
                    previous_response_id=response.get("previous_response_id"),
                    conversation_id=conversation_id,
                    input_items=input_items,
                    response=response,
                )
            )

    async def finish(self, response: Json, *, conversation_items_to_add: Sequence[Json] = ()) -> bool:
        """Store the final Response (and extend its conversation) unless it was cancelled meanwhile."""
        async with transaction(self.engine) as conn:
            result = await conn.execute(
                responses.update()
                .where(responses.c.id == response["id"], responses.c.status.not_in(TERMINAL))
                .values(status=response["status"], response=response, heartbeat_at=time.time())
            )
            stored = result.rowcount > 0
            row = (
                await conn.execute(
                    sa.select(responses.c.conversation_id).where(responses.c.id == response["id"])
                )
            ).first()
            if stored and row is not None and row.conversation_id and conversation_items_to_add:
                await conn.execute(
                    conversation_items.insert(),
                    [
                        {"conversation_id": row.conversation_id, "item_id": item["id"], "item": item}
                        for item in conversation_items_to_add
                    ],
                )
            return stored

    async def forget(self, response_id: str) -> None:
        """Remove a row whose request the service refused up front: that response never existed."""
        async with transaction(self.engine) as conn:
            await conn.execute(response_events.delete().where(response_events.c.response_id == response_id))
            await conn.execute(responses.delete().where(responses.c.id == response_id))

    async def get(self, response_id: str, owner: str) -> StoredResponse:
        async with guard(), self.engine.connect() as conn:
            return await _get(conn, response_id, owner)

    async def chain_items(self, response_id: str, owner: str) -> list[Json]:
        """Input and output items of the chain ending at response_id, oldest first (the history)."""
        turns: list[list[Json]] = []
        async with guard(), self.engine.connect() as conn:
            next_id: str | None = response_id
            while next_id is not None:
                if len(turns) >= MAX_CHAIN:
                    raise NotFound(f"the chain of '{response_id}' is longer than {MAX_CHAIN} responses")
                stored = await _get(conn, next_id, owner)
                if not turns and stored.status not in TERMINAL:
                    raise NotReady(f"Response '{response_id}' is still {stored.status}; wait until it ends.")
                turns.append(stored.input_items + list(stored.response.get("output", [])))
                next_id = stored.previous_response_id
        return [item for turn in reversed(turns) for item in turn]

    async def delete(self, response_id: str, owner: str) -> None:
        async with transaction(self.engine) as conn:
            await _get(conn, response_id, owner)
            await conn.execute(response_events.delete().where(response_events.c.response_id == response_id))
            await conn.execute(responses.delete().where(responses.c.id == response_id))

    async def cancel(self, response_id: str, owner: str, response: Json) -> bool:
        """Mark a running response cancelled; False when it had already ended."""
        async with transaction(self.engine) as conn:
            result = await conn.execute(
                responses.update()
                .where(
                    responses.c.id == response_id,
                    responses.c.owner == owner,
                    responses.c.status.not_in(TERMINAL),
                )
                .values(status="cancelled", response=response)
            )
            return result.rowcount > 0

    async def status(self, response_id: str) -> str | None:
        async with guard(), self.engine.connect() as conn:
            return (
                await conn.execute(sa.select(responses.c.status).where(responses.c.id == response_id))
            ).scalar()

    async def add_events(self, response_id: str, events: Sequence[Json], snapshot: Json | None) -> None:
        """Append stream events (and the latest in-progress snapshot) of a background response."""
        async with transaction(self.engine) as conn:
            if events:
                await conn.execute(
                    response_events.insert(),
                    [{"response_id": response_id, "seq": e["sequence_number"], "event": e} for e in events],
                )
            values: Json = {"heartbeat_at": time.time()}
            if snapshot is not None:
                values["response"] = snapshot
            await conn.execute(
                responses.update()
                .where(responses.c.id == response_id, responses.c.status.not_in(TERMINAL))
                .values(**values)
            )

    async def events_after(self, response_id: str, after: int) -> list[Json]:
        async with guard(), self.engine.connect() as conn:
            rows = await conn.execute(
                sa.select(response_events.c.event)
                .where(response_events.c.response_id == response_id, response_events.c.seq > after)
                .order_by(response_events.c.seq)
            )
            return [dict(row.event) for row in rows]


async def _get(conn: AsyncConnection, response_id: str, owner: str) -> StoredResponse:
    row = (
        await conn.execute(
            sa.select(responses).where(responses.c.id == response_id, responses.c.owner == owner)
        )
    ).first()
    if row is None:
        raise NotFound(f"No response with id '{response_id}' found.")
    return _row(row)
