"""The database: an async engine from a URL (SQLite in WAL mode, or Postgres), migrations, and
the one translation of driver failures into StoreUnavailable (the gateway answers it with 503)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

log = logging.getLogger("gateway.store")

MIGRATIONS = Path(__file__).parent / "migrations"


class StoreUnavailable(Exception):
    """The database could not be reached or refused the operation for a reason not the caller's."""


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite+aiosqlite:///{data_dir / 'gateway.db'}"


def _driver_url(url: str) -> str:
    """`postgresql://` and `sqlite://` name the async drivers this gateway ships with."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    if parsed.drivername == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite").render_as_string(hide_password=False)
    return url


def create_engine(url: str, *, connect_timeout: float = 5.0) -> AsyncEngine:
    url = _driver_url(url)
    parsed = make_url(url)
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if parsed.get_backend_name() == "sqlite":
        kwargs["connect_args"] = {"timeout": 30}
    elif parsed.get_backend_name() == "postgresql":
        kwargs["connect_args"] = {"timeout": connect_timeout, "command_timeout": 30}
        kwargs["pool_timeout"] = connect_timeout
    engine = create_async_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL: readers never block the writer; busy_timeout: writers queue instead of failing."""
    cursor = dbapi_connection.cursor()
    for pragma in ("journal_mode=WAL", "busy_timeout=30000", "synchronous=NORMAL", "foreign_keys=ON"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _alembic_config(connection: sa.Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


# Alembic keeps its running context in module globals: one migration at a time per process
# (gateways of one process may run on different event loops, hence a thread lock).
_MIGRATING = threading.Lock()


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema to the newest revision (idempotent; Postgres replicas starting together
    serialize on an advisory lock in migrations/env.py)."""
    database = engine.url.database or ""
    if engine.dialect.name == "sqlite" and database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)  # the data dir, on first start
    await asyncio.to_thread(_MIGRATING.acquire)  # waits in a worker thread, not on the loop
    try:
        async with guard(), engine.begin() as conn:
            await conn.run_sync(lambda sync: command.upgrade(_alembic_config(sync), "head"))
    finally:
        _MIGRATING.release()


async def revision(engine: AsyncEngine) -> str | None:
    """The schema revision the database is at (None before the first migration)."""
    from alembic.migration import MigrationContext

    async with guard(), engine.connect() as conn:
        return await conn.run_sync(lambda sync: MigrationContext.configure(sync).get_current_revision())


@contextlib.asynccontextmanager
async def guard() -> AsyncIterator[None]:
    """Driver and connection failures -> StoreUnavailable; everything else propagates."""
    try:
        yield
    except (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError) as exc:
        log.warning("response store unavailable: %s", exc)
        raise StoreUnavailable(str(exc).splitlines()[0]) from exc
    except (TimeoutError, OSError) as exc:
        log.warning("response store unavailable: %r", exc)
        raise StoreUnavailable(repr(exc)) from exc
    except sa.exc.DBAPIError as exc:
        if exc.connection_invalidated:
            raise StoreUnavailable(str(exc).splitlines()[0]) from exc
        raise


@contextlib.asynccontextmanager
async def transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    async with guard(), engine.begin() as conn:
        yield conn
