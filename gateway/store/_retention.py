"""Housekeeping: TTL and max-rows retention, heartbeats of running responses, and the sweep that
ends responses whose gateway died mid-generation (so none stays `in_progress` forever)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.store._engine import StoreUnavailable, transaction
from gateway.store._responses import TERMINAL
from gateway.store._tables import conversation_items, conversations, response_events, responses

log = logging.getLogger("gateway.store")

STALE_ERROR = {
    "code": "server_error",
    "message": "The gateway generating this response stopped before it finished.",
}


async def sweep_stale(engine: AsyncEngine, stale_after: float) -> int:
    """Mark responses whose heartbeat stopped `failed`; returns how many."""
    cutoff = time.time() - stale_after
    async with transaction(engine) as conn:
        rows = (
            await conn.execute(
                sa.select(responses.c.id, responses.c.response).where(
                    responses.c.status.not_in(TERMINAL), responses.c.heartbeat_at < cutoff
                )
            )
        ).all()
        for row in rows:
            response = {**dict(row.response), "status": "failed", "error": STALE_ERROR}
            await conn.execute(
                responses.update()
                .where(responses.c.id == row.id, responses.c.status.not_in(TERMINAL))
                .values(status="failed", response=response)
            )
    return len(rows)


async def heartbeat(engine: AsyncEngine, response_ids: Collection[str]) -> None:
    if response_ids:
        async with transaction(engine) as conn:
            await conn.execute(
                responses.update()
                .where(responses.c.id.in_(list(response_ids)))
                .values(heartbeat_at=time.time())
            )


async def enforce_retention(engine: AsyncEngine, ttl: float | None, max_rows: int | None) -> int:
    """Delete responses (and conversations) older than ttl, then the oldest beyond max_rows."""
    deleted = 0
    async with transaction(engine) as conn:
        doomed: list[str] = []
        if ttl is not None:
            cutoff = time.time() - ttl
            doomed += (
                await conn.execute(sa.select(responses.c.id).where(responses.c.created_at < cutoff))
            ).scalars()
            old_convs = list(
                (
                    await conn.execute(
                        sa.select(conversations.c.id).where(conversations.c.created_at < cutoff)
                    )
                ).scalars()
            )
            if old_convs:
                await conn.execute(
                    conversation_items.delete().where(conversation_items.c.conversation_id.in_(old_convs))
                )
                await conn.execute(conversations.delete().where(conversations.c.id.in_(old_convs)))
        if max_rows is not None:
            doomed += (
                await conn.execute(
                    sa.select(responses.c.id).order_by(responses.c.created_at.desc()).offset(max_rows)
                )
            ).scalars()
        for start in range(0, len(doomed), 500):
            chunk = doomed[start : start + 500]
            await conn.execute(response_events.delete().where(response_events.c.response_id.in_(chunk)))
            deleted += (await conn.execute(responses.delete().where(responses.c.id.in_(chunk)))).rowcount
    return deleted


async def housekeeping(
    engine: AsyncEngine,
    *,
    running: Callable[[], Collection[str]],
    interval: float,
    stale_after: float,
    ttl: float | None,
    max_rows: int | None,
) -> None:
    """Forever: heartbeat what this gateway is generating, sweep the stale, apply retention."""
    last_retention = 0.0
    while True:
        try:
            await heartbeat(engine, running())
            if (swept := await sweep_stale(engine, stale_after)) > 0:
                log.warning("marked %d abandoned in-progress responses failed", swept)
            if time.monotonic() - last_retention >= max(interval, 60.0) or last_retention == 0.0:
                last_retention = time.monotonic()
                if (deleted := await enforce_retention(engine, ttl, max_rows)) > 0:
                    log.info("retention deleted %d stored responses", deleted)
        except StoreUnavailable:
            pass  # logged by the guard; the next round retries
        except Exception:
            log.exception("store housekeeping failed")
        await asyncio.sleep(interval)
