"""The store on both databases directly: migrations, ownership, chains, retention, the stale sweep,
concurrent writers from two engines (two gateway replicas) on one database."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import sqlalchemy as sa

from gateway.store import NotFound, Store, enforce_retention, revision, sweep_stale
from gateway.store._engine import create_engine, migrate
from gateway.store._tables import responses


def _response(response_id: str, status: str = "in_progress", previous: str | None = None) -> dict[str, Any]:
    output = [] if status == "in_progress" else [{"id": f"msg_{response_id}", "type": "message"}]
    return {"id": response_id, "status": status, "output": output, "previous_response_id": previous}


async def _create(store: Store, response_id: str, owner: str = "", previous: str | None = None) -> None:
    await store.responses.create(
        _response(response_id, previous=previous),
        owner=owner,
        input_items=[{"id": f"in_{response_id}", "type": "message"}],
        background=False,
        conversation_id=None,
    )


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_migrations_are_idempotent_and_concurrent(store_url: str) -> None:
    async def main() -> str | None:
        engines = [create_engine(store_url) for _ in range(3)]
        await asyncio.gather(*(migrate(e) for e in engines))  # replicas starting together
        await migrate(engines[0])  # and again: nothing to do
        current = await revision(engines[0])
        for engine in engines:
            await engine.dispose()
        return current

    assert run(main()) == "0001"


def test_chain_ownership_delete(store_url: str) -> None:
    async def main() -> None:
        store = await Store.open(store_url)
        await _create(store, "r1", owner="key-a")
        await store.responses.finish(_response("r1", "completed"))
        await _create(store, "r2", owner="key-a", previous="r1")
        await store.responses.finish(_response("r2", "completed", previous="r1"))
        items = await store.responses.chain_items("r2", "key-a")
        assert [i["id"] for i in items] == ["in_r1", "msg_r1", "in_r2", "msg_r2"]
        with pytest.raises(NotFound):
            await store.responses.get("r2", "key-b")  # another key sees nothing
        with pytest.raises(NotFound):
            await store.responses.chain_items("r2", "")
        await store.responses.delete("r1", "key-a")
        with pytest.raises(NotFound):  # a chain with a deleted link is refused, not silently cut
            await store.responses.chain_items("r2", "key-a")
        await store.close()

    run(main())


def test_finish_does_not_overwrite_a_cancel(store_url: str) -> None:
    async def main() -> None:
        store = await Store.open(store_url)
        await _create(store, "r1")
        assert await store.responses.cancel("r1", "", {**_response("r1"), "status": "cancelled"})
        assert not await store.responses.finish(_response("r1", "completed"))
        assert (await store.responses.get("r1", "")).status == "cancelled"
        await store.close()

    run(main())


def test_retention_ttl_and_max_rows(store_url: str) -> None:
    async def main() -> list[str]:
        store = await Store.open(store_url)
        for i in range(5):
            await _create(store, f"r{i}")
        async with store.engine.begin() as conn:  # r0 is a day old, the others newer one by one
            for i in range(5):
                created = time.time() - 86400 if i == 0 else time.time() - 100 + i
                await conn.execute(
                    responses.update().where(responses.c.id == f"r{i}").values(created_at=created)
                )
        assert await enforce_retention(store.engine, ttl=3600, max_rows=None) == 1
        assert await enforce_retention(store.engine, ttl=3600, max_rows=2) == 2
        async with store.engine.connect() as conn:
            kept = sorted((await conn.execute(sa.select(responses.c.id))).scalars())
        await store.close()
        return kept

    assert run(main()) == ["r3", "r4"]


def test_stale_sweep_fails_abandoned_responses_only(store_url: str) -> None:
    async def main() -> None:
        store = await Store.open(store_url)
        await _create(store, "dead")
        await _create(store, "alive")
        async with store.engine.begin() as conn:
            await conn.execute(responses.update().where(responses.c.id == "dead").values(heartbeat_at=0.0))
        assert await sweep_stale(store.engine, stale_after=30) == 1
        dead = await store.responses.get("dead", "")
        assert dead.status == "failed" and dead.response["error"]["code"] == "server_error"
        assert (await store.responses.get("alive", "")).status == "in_progress"
        await store.close()

    run(main())


def test_concurrent_writers_from_two_engines(store_url: str) -> None:
    async def main() -> int:
        one, two = await Store.open(store_url), await Store.open(store_url)

        async def write(store: Store, i: int) -> None:
            await _create(store, f"r{i}")
            await store.responses.add_events(f"r{i}", [{"sequence_number": 0, "type": "x"}], None)
            await store.responses.finish(_response(f"r{i}", "completed"))

        await asyncio.gather(*(write(one if i % 2 else two, i) for i in range(40)))
        async with one.engine.connect() as conn:
            done = (
                await conn.execute(sa.select(sa.func.count()).where(responses.c.status == "completed"))
            ).scalar_one()
        await one.close()
        await two.close()
        return int(done)

    assert run(main()) == 40


def test_migrate_command(store_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    from gateway.store.__main__ import main

    assert main(["current", "--store-url", store_url]) == 0
    assert "schema revision: None" in capsys.readouterr().out
    assert main(["upgrade", "--store-url", store_url]) == 0
    assert "schema revision: 0001" in capsys.readouterr().out
    assert main(["upgrade", "--store-url", "postgresql://nobody@127.0.0.1:1/none"]) == 1
    assert "the store is unavailable" in capsys.readouterr().err
