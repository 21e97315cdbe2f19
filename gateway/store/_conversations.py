"""Stored conversations: a metadata row and an ordered list of items (inputs and outputs of turns)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.store._engine import guard, transaction
from gateway.store._responses import NotFound
from gateway.store._tables import conversation_items, conversations

Json = dict[str, Any]


def conversation_json(row: sa.Row[Any]) -> Json:
    return {
        "id": row.id,
        "object": "conversation",
        "created_at": int(row.created_at),
        "metadata": dict(row.metadata),
    }


class ConversationStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def create(self, conversation_id: str, owner: str, metadata: Json, items: Sequence[Json]) -> Json:
        now = time.time()
        async with transaction(self.engine) as conn:
            await conn.execute(
                conversations.insert().values(
                    id=conversation_id, owner=owner, created_at=now, metadata=metadata
                )
            )
            await _add(conn, conversation_id, items)
        return {"id": conversation_id, "object": "conversation", "created_at": int(now), "metadata": metadata}

    async def get(self, conversation_id: str, owner: str) -> Json:
        async with guard(), self.engine.connect() as conn:
            return conversation_json(await _get(conn, conversation_id, owner))

    async def update(self, conversation_id: str, owner: str, metadata: Json) -> Json:
        async with transaction(self.engine) as conn:
            await _get(conn, conversation_id, owner)
            await conn.execute(
                conversations.update().where(conversations.c.id == conversation_id).values(metadata=metadata)
            )
            return conversation_json(await _get(conn, conversation_id, owner))

    async def delete(self, conversation_id: str, owner: str) -> None:
        async with transaction(self.engine) as conn:
            await _get(conn, conversation_id, owner)
            await conn.execute(
                conversation_items.delete().where(conversation_items.c.conversation_id == conversation_id)
            )
            await conn.execute(conversations.delete().where(conversations.c.id == conversation_id))

    async def add_items(self, conversation_id: str, owner: str, items: Sequence[Json]) -> None:
        async with transaction(self.engine) as conn:
            await _get(conn, conversation_id, owner)
            await _add(conn, conversation_id, items)

    async def items(self, conversation_id: str, owner: str) -> list[Json]:
        """All items, oldest first: the history a response in this conversation continues."""
        async with guard(), self.engine.connect() as conn:
            await _get(conn, conversation_id, owner)
            rows = await conn.execute(
                sa.select(conversation_items.c.item)
                .where(conversation_items.c.conversation_id == conversation_id)
                .order_by(conversation_items.c.seq)
            )
            return [dict(row.item) for row in rows]

    async def get_item(self, conversation_id: str, item_id: str, owner: str) -> Json:
        async with guard(), self.engine.connect() as conn:
            await _get(conn, conversation_id, owner)
            row = (
                await conn.execute(
                    sa.select(conversation_items.c.item).where(
                        conversation_items.c.conversation_id == conversation_id,
                        conversation_items.c.item_id == item_id,
                    )
                )
            ).first()
        if row is None:
            raise NotFound(f"No item with id '{item_id}' found in conversation '{conversation_id}'.")
        return dict(row.item)

    async def delete_item(self, conversation_id: str, item_id: str, owner: str) -> Json:
        async with transaction(self.engine) as conn:
            row = await _get(conn, conversation_id, owner)
            result = await conn.execute(
                conversation_items.delete().where(
                    conversation_items.c.conversation_id == conversation_id,
                    conversation_items.c.item_id == item_id,
                )
            )
            if result.rowcount == 0:
                raise NotFound(f"No item with id '{item_id}' found in conversation '{conversation_id}'.")
            return conversation_json(row)


async def _get(conn: AsyncConnection, conversation_id: str, owner: str) -> sa.Row[Any]:
    row = (
        await conn.execute(
            sa.select(conversations).where(
                conversations.c.id == conversation_id, conversations.c.owner == owner
            )
        )
    ).first()
    if row is None:
        raise NotFound(f"No conversation with id '{conversation_id}' found.")
    return row


async def _add(conn: AsyncConnection, conversation_id: str, items: Sequence[Json]) -> None:
    if items:
        await conn.execute(
            conversation_items.insert(),
            [{"conversation_id": conversation_id, "item_id": item["id"], "item": item} for item in items],
        )
