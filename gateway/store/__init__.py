"""The gateway's response store: stored responses, their events, conversations; SQLite or Postgres."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.store._conversations import ConversationStore
from gateway.store._engine import StoreUnavailable, create_engine, migrate, revision, sqlite_url
from gateway.store._responses import TERMINAL, NotFound, NotReady, ResponseStore, StoredResponse
from gateway.store._retention import enforce_retention, housekeeping, sweep_stale


class Store:
    """One database: the responses and conversations repositories over one engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.responses = ResponseStore(engine)
        self.conversations = ConversationStore(engine)

    @classmethod
    async def open(cls, url: str, *, connect_timeout: float = 5.0) -> Store:
        """Connect and migrate to the newest schema (raises StoreUnavailable when unreachable)."""
        engine = create_engine(url, connect_timeout=connect_timeout)
        try:
            await migrate(engine)
        except BaseException:
            await engine.dispose()
            raise
        return cls(engine)

    async def close(self) -> None:
        await self.engine.dispose()


__all__ = [
    "TERMINAL",
    "NotFound",
    "NotReady",
    "Store",
    "StoreUnavailable",
    "StoredResponse",
    "enforce_retention",
    "housekeeping",
    "revision",
    "sqlite_url",
    "sweep_stale",
]
