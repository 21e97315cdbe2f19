"""The store's life in the app: open and migrate at start (a database that cannot be reached
stops the start with a clear error), housekeeping while serving, dispose at shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from gateway._generate import Generation
from gateway._responses_background import Background
from gateway._responses_state import StatefulResponses
from gateway._settings import GatewaySettings
from gateway.store import Store, housekeeping, sqlite_url, sweep_stale
from gateway.store._engine import create_engine, migrate

log = logging.getLogger("gateway")


def store_url(settings: GatewaySettings) -> str:
    return settings.store_url or sqlite_url(settings.data_dir)


def make_store(settings: GatewaySettings) -> Store | None:
    """The store object (no connection yet), or None with the store off."""
    if not settings.store:
        return None
    return Store(create_engine(store_url(settings), connect_timeout=settings.store_timeout))


@contextlib.asynccontextmanager
async def serving_state(
    settings: GatewaySettings, store: Store | None, generation: Generation
) -> AsyncIterator[StatefulResponses]:
    if store is None:
        yield StatefulResponses(generation, None, None)
        return
    await migrate(store.engine)
    swept = await sweep_stale(store.engine, settings.store_stale_after)
    log.info(
        "response store at %s (schema migrated; %d stale responses marked failed)",
        store.engine.url.render_as_string(),
        swept,
    )
    state = StatefulResponses(generation, store, None)
    state.background = Background(generation, store, state.running, flush_every=0.1, poll=0.05)
    task = asyncio.create_task(
        housekeeping(
            store.engine,
            running=lambda: set(state.running),
            interval=settings.store_heartbeat,
            stale_after=settings.store_stale_after,
            ttl=settings.store_ttl,
            max_rows=settings.store_max_responses,
        ),
        name="store housekeeping",
    )
    try:
        yield state
    finally:
        task.cancel()
        for running in list(state.background.tasks.values()):
            running.cancel()
        await asyncio.gather(task, *state.background.tasks.values(), return_exceptions=True)
        await store.close()
