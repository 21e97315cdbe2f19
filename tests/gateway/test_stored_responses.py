"""The stateful Responses API through the openai SDK, on SQLite and Postgres, over the fake service
(exact replies; the requests it received show the history the gateway rendered)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest

from gateway.store import Store
from gateway.store._tables import responses
from tests.clients.fake_service import FakeServer, Reply, content, done, reasoning, tool_call
from tests.conftest import wait_until
from tests.support.gateway_thread import GatewayThread
from tests.support.postgres import Postgres

Start = Callable[..., GatewayThread]
TOOLS: Any = [{"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}}}]


def sdk(gateway: GatewayThread, key: str = "x") -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0, timeout=30)


def sent(fake: FakeServer) -> list[tuple[str, str, str, list[str]]]:
    """The last Generate request's messages: (role, content, reasoning, tool call ids)."""
    names = {3: "user", 4: "assistant", 5: "tool"}
    return [
        (names.get(m.role, str(m.role)), m.content, m.reasoning, [c.id for c in m.tool_calls])
        for m in fake.servicer.requests[-1].messages
    ]


def test_three_turn_chain_with_a_function_call_round_trip(
    fake: FakeServer, start_gateway: Start, store_url: str
) -> None:
    fake.servicer.generate_script = [
        Reply([reasoning("need weather"), *tool_call(0, "call_1", "get_weather", "{}"), done()]),
        Reply([reasoning("got it"), content("3 C in Oslo"), done()]),
        Reply([content("You are welcome"), done()]),
    ]
    client = sdk(start_gateway([fake.target], store_url=store_url))
    first = client.responses.create(model="m", input="Weather in Oslo?", tools=TOOLS)
    assert first.store is True and first.status == "completed"
    call = next(item for item in first.output if item.type == "function_call")
    second = client.responses.create(
        model="m",
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": '{"temp_c": 3}'}],
        tools=TOOLS,
    )
    assert second.previous_response_id == first.id and second.output_text == "3 C in Oslo"
    third = client.responses.create(model="m", previous_response_id=second.id, input="Thanks")
    assert third.output_text == "You are welcome"
    assert sent(fake) == [
        ("user", "Weather in Oslo?", "", []),
        ("assistant", "", "need weather", ["call_1"]),
        ("tool", '{"temp_c": 3}', "", []),
        ("assistant", "3 C in Oslo", "got it", []),
        ("user", "Thanks", "", []),
    ]


def test_retrieve_input_items_pages_and_delete(
    fake: FakeServer, start_gateway: Start, store_url: str
) -> None:
    client = sdk(start_gateway([fake.target], store_url=store_url))
    texts = [f"part {i}" for i in range(5)]
    response = client.responses.create(
        model="m", input=[{"role": "user", "content": t} for t in texts], metadata={"k": "v"}
    )
    got = client.responses.retrieve(response.id)
    assert got.id == response.id and got.output_text == "hello" and got.metadata == {"k": "v"}
    first = client.responses.input_items.list(response.id, limit=2, order="asc")
    assert [i.content[0].text for i in first.data] == texts[:2] and first.has_more  # type: ignore[union-attr]
    rest = client.responses.input_items.list(response.id, after=first.last_id, order="asc")
    assert [i.content[0].text for i in rest.data] == texts[2:] and not rest.has_more  # type: ignore[union-attr]
    before = client.responses.input_items.list(
        response.id, order="asc", extra_query={"before": rest.data[1].id}
    )
    assert [i.id for i in before.data] == [i.id for i in first.data + rest.data[:1]]
    newest = client.responses.input_items.list(response.id, limit=1)  # default order: desc
    assert newest.data[0].content[0].text == texts[-1]  # type: ignore[union-attr]
    assert [i.id for i in client.responses.input_items.list(response.id, order="asc")] == [
        i.id for i in first.data + rest.data
    ]
    client.responses.delete(response.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(response.id)
    with pytest.raises(openai.NotFoundError) as info:
        client.responses.create(model="m", input="x", previous_response_id=response.id)
    assert info.value.body["param"] == "previous_response_id"  # type: ignore[index]


def test_store_false_stores_nothing(fake: FakeServer, start_gateway: Start) -> None:
    client = sdk(start_gateway([fake.target]))
    response = client.responses.create(model="m", input="x", store=False)
    assert response.store is False
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)
    with pytest.raises(openai.BadRequestError) as info:
        client.responses.create(model="m", input="x", store=False, background=True)
    assert info.value.body["param"] == "background"  # type: ignore[index]


def test_streamed_responses_are_stored(fake: FakeServer, start_gateway: Start, store_url: str) -> None:
    client = sdk(start_gateway([fake.target], store_url=store_url))
    with client.responses.stream(model="m", input="x") as stream:
        final = stream.get_final_response()
    assert final.store is True
    assert client.responses.retrieve(final.id).output_text == "hello"


def test_background_poll_replay(fake: FakeServer, start_gateway: Start, store_url: str) -> None:
    fake.servicer.generate_script = [Reply([content("a"), content("b"), done()], delay_s=0.05)]
    client = sdk(start_gateway([fake.target], store_url=store_url))
    response = client.responses.create(model="m", input="x", background=True)
    assert response.status in ("queued", "in_progress") and response.background is True
    assert wait_until(lambda: client.responses.retrieve(response.id).status == "completed", timeout=20)
    assert client.responses.retrieve(response.id).output_text == "ab"
    events = list(client.responses.retrieve(response.id, stream=True, starting_after=3))
    assert events[0].sequence_number == 4 and events[-1].type == "response.completed"
    numbers = [e.sequence_number for e in events]
    assert numbers == list(range(4, 4 + len(events)))
    streamed = list(client.responses.create(model="m", input="y", background=True, stream=True))
    assert streamed[0].type == "response.created" and streamed[-1].type == "response.completed"


def test_background_cancel_stops_the_engine_call(
    fake: FakeServer, start_gateway: Start, store_url: str
) -> None:
    fake.servicer.generate_script = [Reply([content("partial")], hang=True)]
    client = sdk(start_gateway([fake.target], store_url=store_url))
    response = client.responses.create(model="m", input="x", background=True)
    assert wait_until(lambda: len(fake.servicer.requests) == 1)
    cancelled = client.responses.cancel(response.id)
    assert cancelled.status == "cancelled"
    assert fake.servicer.cancelled.wait(10)
    time.sleep(0.3)
    assert client.responses.retrieve(response.id).status == "cancelled"


def test_deleting_a_running_background_response_stops_it(
    fake: FakeServer, start_gateway: Start, store_url: str
) -> None:
    fake.servicer.generate_script = [Reply([content("partial")], hang=True)]
    client = sdk(start_gateway([fake.target], store_url=store_url))
    response = client.responses.create(model="m", input="x", background=True)
    assert wait_until(lambda: len(fake.servicer.requests) == 1)
    with pytest.raises(openai.BadRequestError) as info:  # a chain cannot continue a running response
        client.responses.create(model="m", input="x", previous_response_id=response.id)
    assert info.value.body["param"] == "previous_response_id"  # type: ignore[index]
    client.responses.delete(response.id)
    assert fake.servicer.cancelled.wait(10)


def test_ownership_two_keys(fake: FakeServer, start_gateway: Start) -> None:
    gateway = start_gateway([fake.target], api_keys=["key-a", "key-b"])
    alice, bob = sdk(gateway, "key-a"), sdk(gateway, "key-b")
    response = alice.responses.create(model="m", input="secret")
    conv = alice.conversations.create()
    for attempt in (
        lambda: bob.responses.retrieve(response.id),
        lambda: bob.responses.delete(response.id),
        lambda: bob.responses.input_items.list(response.id),
        lambda: bob.responses.create(model="m", input="x", previous_response_id=response.id),
        lambda: bob.conversations.retrieve(conv.id),
        lambda: bob.responses.create(model="m", input="x", conversation=conv.id),
    ):
        with pytest.raises(openai.NotFoundError):
            attempt()
    assert alice.responses.retrieve(response.id).id == response.id


def test_data_survives_a_restart(fake: FakeServer, start_gateway: Start, store_url: str) -> None:
    first = start_gateway([fake.target], store_url=store_url)
    response = sdk(first).responses.create(model="m", input="remember me")
    first.stop()
    second = start_gateway([fake.target], store_url=store_url)
    assert sdk(second).responses.retrieve(response.id).output_text == "hello"
    sdk(second).responses.create(model="m", input="and now?", previous_response_id=response.id)
    assert [m[1] for m in sent(fake)] == ["remember me", "hello", "and now?"]


def test_two_replicas_share_one_database(fake: FakeServer, start_gateway: Start, store_url: str) -> None:
    one, two = (sdk(start_gateway([fake.target], store_url=store_url)) for _ in range(2))
    response = one.responses.create(model="m", input="from one")
    assert two.responses.retrieve(response.id).output_text == "hello"
    follow = two.responses.create(model="m", input="from two", previous_response_id=response.id)
    assert one.responses.retrieve(follow.id).previous_response_id == response.id


def test_conversations(fake: FakeServer, start_gateway: Start, store_url: str) -> None:
    client = sdk(start_gateway([fake.target], store_url=store_url))
    conv = client.conversations.create(items=[{"type": "message", "role": "user", "content": "I am Ada"}])
    response = client.responses.create(model="m", input="Who am I?", conversation=conv.id)
    assert response.conversation is not None and response.conversation.id == conv.id
    assert [m[1] for m in sent(fake)] == ["I am Ada", "Who am I?"]
    items = client.conversations.items.list(conv.id, order="asc")
    assert [i.type for i in items.data] == ["message", "message", "message"]
    client.conversations.items.create(conv.id, items=[{"type": "message", "role": "user", "content": "More"}])
    client.responses.create(model="m", input="Again", conversation={"id": conv.id})
    assert [m[1] for m in sent(fake)] == ["I am Ada", "Who am I?", "hello", "More", "Again"]
    assert client.conversations.update(conv.id, metadata={"a": "b"}).metadata == {"a": "b"}
    client.conversations.delete(conv.id)
    with pytest.raises(openai.NotFoundError):
        client.conversations.retrieve(conv.id)


def test_without_a_store_stateful_requests_are_400(fake: FakeServer, start_gateway: Start) -> None:
    gateway = start_gateway([fake.target], store=False)
    client = sdk(gateway)
    assert client.responses.create(model="m", input="x").store is False
    for param, call in (
        (
            "previous_response_id",
            lambda: client.responses.create(model="m", input="x", previous_response_id="r"),
        ),
        ("background", lambda: client.responses.create(model="m", input="x", background=True)),
        ("conversation", lambda: client.responses.create(model="m", input="x", conversation="conv_1")),
    ):
        with pytest.raises(openai.BadRequestError) as info:
            call()
        assert info.value.body["param"] == param  # type: ignore[index]
    for method, path in (
        ("GET", "/v1/responses/r"),
        ("DELETE", "/v1/responses/r"),
        ("POST", "/v1/conversations"),
    ):
        answer = httpx.request(method, gateway.url + path, json={})
        assert answer.status_code == 400 and "--no-store" in answer.json()["error"]["message"]


def test_database_down_is_503_and_nothing_is_generated(
    fake: FakeServer, start_gateway: Start, postgres: Postgres
) -> None:
    client = sdk(start_gateway([fake.target], store_url=postgres.new_database(), store_timeout=2))
    kept = client.responses.create(model="m", input="before")
    calls = len(fake.servicer.requests)
    postgres.stop()
    try:
        for call in (
            lambda: client.responses.create(model="m", input="x"),
            lambda: client.responses.create(model="m", input="x", stream=True),
            lambda: client.responses.retrieve(kept.id),
        ):
            with pytest.raises(openai.InternalServerError) as info:
                call()
            assert info.value.status_code == 503
            assert info.value.body["code"] == "store_unavailable"  # type: ignore[index]
        assert len(fake.servicer.requests) == calls  # no generation started half-stored
        assert client.responses.create(model="m", input="x", store=False).store is False
    finally:
        postgres.resume()
    assert client.responses.retrieve(kept.id).id == kept.id  # the pool reconnects


def test_no_response_stays_in_progress(fake: FakeServer, start_gateway: Start, store_url: str) -> None:
    """A gateway shut down mid-generation ends its responses `failed`; one that died (no shutdown,
    heartbeat stops) is swept to `failed` by the next gateway's startup / housekeeping sweep."""
    fake.servicer.generate_script = [Reply([content("partial")], hang=True)]
    first = start_gateway([fake.target], store_url=store_url)
    running = sdk(first).responses.create(model="m", input="x", background=True)
    assert wait_until(lambda: len(fake.servicer.requests) == 1)
    first.stop()
    settings = {"store_url": store_url, "store_heartbeat": 0.1, "store_stale_after": 1.0}
    second = start_gateway([fake.target], **settings)
    stopped = sdk(second).responses.retrieve(running.id)
    assert stopped.status == "failed" and stopped.error is not None
    asyncio.run(_insert_abandoned(store_url, "resp_crashed"))  # as a crashed gateway leaves it
    assert wait_until(lambda: sdk(second).responses.retrieve("resp_crashed").status == "failed", timeout=10)


async def _insert_abandoned(url: str, response_id: str) -> None:
    store = await Store.open(url)
    await store.responses.create(
        {
            "id": response_id,
            "object": "response",
            "status": "in_progress",
            "output": [],
            "model": "m",
            "created_at": 0,
        },
        owner="",
        input_items=[],
        background=True,
        conversation_id=None,
    )
    async with store.engine.begin() as conn:
        await conn.execute(responses.update().where(responses.c.id == response_id).values(heartbeat_at=0.0))
    await store.close()
