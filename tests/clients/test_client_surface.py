"""Client and AsyncClient are one implementation: the same surface, and what the gateway needs of it.

The sync client is a facade over the async one (gptoss.client over gptoss.aio); these tests pin
that the two cannot drift (same methods, same parameters) and the gateway-facing options of
AsyncClient: a channel it is given, balanced channel options, per-call metadata.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import signal
import threading
from collections.abc import Callable
from typing import Any

import grpc.aio
import pytest
from gptoss import (
    NO_RETRY,
    AsyncClient,
    AsyncEventStream,
    Client,
    ContentDelta,
    EventStream,
    ServingStatus,
    UnavailableError,
)
from gptoss.balancing import balanced_channel_options, channel_target, service_config

from tests.clients.fake_service import FakeServer, Reply, content, done

USER = [{"role": "user", "content": "hi"}]
# Names that differ only because one side is async: (sync, async).
RENAMED = {"close": "aclose", "__enter__": "__aenter__", "__exit__": "__aexit__", "__iter__": "__aiter__"}


def public_methods(cls: type) -> dict[str, Callable[..., Any]]:
    names = {n for n in dir(cls) if not n.startswith("_")} | {"__init__", "__enter__", "__aenter__"}
    return {n: getattr(cls, n) for n in names if callable(getattr(cls, n, None))}


def parameters(function: Callable[..., Any]) -> list[tuple[str, Any, Any, Any]]:
    return [
        (p.name, p.kind, p.default, p.annotation) for p in inspect.signature(function).parameters.values()
    ]


def test_client_and_async_client_have_the_same_methods_and_parameters() -> None:
    sync, aio = public_methods(Client), public_methods(AsyncClient)
    assert {n for n in sync if n != "__enter__"} == {n for n in aio if n != "__aenter__"}
    for name, method in sync.items():
        if name in ("__init__", "__enter__"):
            continue
        assert inspect.iscoroutinefunction(aio[name]) or name == "generate", name
        assert parameters(method) == parameters(aio[name]), name
    # The constructor: the same options (one TypedDict); only AsyncClient takes a grpc.aio channel,
    # which is bound to the caller's event loop and so cannot be handed to the sync facade.
    async_init = [p for p in parameters(AsyncClient.__init__) if p[0] != "channel"]
    assert parameters(Client.__init__) == async_init


def test_event_streams_have_the_same_surface() -> None:
    sync = {n for n in dir(EventStream) if not n.startswith("_")}
    aio = {n for n in dir(AsyncEventStream) if not n.startswith("_")}
    assert {RENAMED.get(n, n) for n in sync} == aio
    for name in sync:
        assert parameters(getattr(EventStream, name)) == parameters(
            getattr(AsyncEventStream, RENAMED.get(name, name))
        )


def test_errors_raised_by_the_client_itself_carry_their_status() -> None:
    assert UnavailableError("not ready").code is grpc.StatusCode.UNAVAILABLE


def test_the_sync_client_serves_several_threads_at_once(fake: FakeServer) -> None:
    fake.servicer.generate_script = [Reply([content("ok"), done()], delay_s=0.05)]
    results: list[str] = []
    with Client(fake.target) as client:
        threads = [
            threading.Thread(target=lambda: results.append(client.complete(messages=USER).content))
            for _ in range(6)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
    assert results == ["ok"] * 6


def test_ctrl_c_while_a_blocking_read_waits_cancels_the_call(fake: FakeServer) -> None:
    """The CLI's case: SIGINT lands in the reading thread; leaving `with` must cancel the RPC."""
    fake.servicer.generate_script = [Reply([content("first")], hang=True), Reply([content("next"), done()])]
    with Client(fake.target) as client:
        timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
        with pytest.raises(KeyboardInterrupt), client.generate(messages=USER) as stream:
            assert next(stream) == ContentDelta("first")
            timer.start()
            next(stream)  # blocks until the interrupt
        assert fake.servicer.cancelled.wait(5), "the server never saw the cancellation"
        assert client.complete(messages=USER).content == "next"  # the client stays usable


def test_close_is_idempotent_and_the_loop_thread_ends(fake: FakeServer) -> None:
    def loop_threads() -> int:
        return sum(t.name == "gptoss-client-loop" for t in threading.enumerate())

    client = Client(fake.target)
    assert client.health() is ServingStatus.SERVING and loop_threads() == 1
    client.close()
    client.close()
    assert loop_threads() == 0


async def test_a_channel_passed_in_is_used_and_not_closed(fake: FakeServer) -> None:
    channel = grpc.aio.insecure_channel(fake.target)
    async with AsyncClient("ignored:1", channel=channel, retry=NO_RETRY) as client:
        assert (await client.complete(messages=USER)).content == "hello"
    async with AsyncClient(channel=channel) as again:  # still open after the first client closed
        assert await again.health() is ServingStatus.SERVING
    await channel.close()


async def test_per_call_metadata_and_request_id_reach_the_server(fake: FakeServer) -> None:
    async with AsyncClient(fake.target, api_key="k") as client:
        extra = [("x-gptoss-caller", "gateway"), ("traceparent", "00-" + "1" * 32 + "-" + "2" * 16 + "-01")]
        await client.complete(messages=USER, request_id="rid-1", metadata=extra)
        await client.model_info(metadata=[("x-gptoss-caller", "gateway")])
    generate, info = fake.servicer.metadata
    assert generate["x-request-id"] == "rid-1" and generate["x-gptoss-caller"] == "gateway"
    assert generate["traceparent"].startswith("00-") and generate["authorization"] == "Bearer k"
    assert info["x-gptoss-caller"] == "gateway"


async def test_balanced_channel_spreads_calls_and_skips_a_replica_that_is_not_ready() -> None:
    with FakeServer() as first, FakeServer() as second:
        options = balanced_channel_options(health_check=True)
        async with AsyncClient(
            channel_target([first.target, second.target]), channel_options=options
        ) as client:
            calls = (first.servicer, second.servicer)
            for _ in range(50):  # until both subchannels are connected (round_robin picks ready ones)
                await client.model_info()
                if all(c.unary_calls for c in calls):
                    break
            start = [c.unary_calls for c in calls]
            for _ in range(6):
                await client.model_info()
            assert [c.unary_calls - n for c, n in zip(calls, start, strict=True)] == [3, 3]
            first.set_readiness(False)
            streak = 0
            for _ in range(200):  # until the health watch took `first` out: two calls in a row on `second`
                before = second.servicer.unary_calls
                await client.model_info()
                streak = streak + 1 if second.servicer.unary_calls > before else 0
                if streak == 2:
                    break
                await asyncio.sleep(0.02)
            start = [c.unary_calls for c in calls]
            for _ in range(4):
                await client.model_info()
            assert [c.unary_calls - n for c, n in zip(calls, start, strict=True)] == [0, 4]


def test_channel_target_and_service_config() -> None:
    assert channel_target(["localhost:1"]) == "localhost:1"  # one name: DNS keeps re-resolving it
    assert channel_target(["127.0.0.1:1", "127.0.0.1:2"]) == "ipv4:127.0.0.1:1,127.0.0.1:2"
    assert channel_target(["[::1]:1", "::1:2"]) == "ipv6:[::1]:1,[::1]:2"
    for bad in (["dns:///a:1", "b:2"], ["127.0.0.1:1", "[::1]:2"], ["nohost", "a:1"], []):
        with pytest.raises(ValueError):
            channel_target(bad)
    assert '"healthCheckConfig"' not in service_config(health_check=False)
    assert '"serviceName": "gptoss.v1.InferenceService"' in service_config(health_check=True)
