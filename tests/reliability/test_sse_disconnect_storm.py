"""Cancellation storm by SSE disconnect: streamed chat completions through the gateway to the real
server and vLLM CPU engine, abandoned at random points; afterwards the checks of
test_cancellation_storm.py (nothing left running or allocated, RSS near its baseline).
"""

from __future__ import annotations

import asyncio
import random
import time

import httpx
import pytest

from tests.conftest import wait_until
from tests.gateway.gateway_thread import GatewayThread
from tests.reliability.helpers import (
    STORM_CONCURRENCY,
    STORM_WARM_UP,
    GaugeWatch,
    Tally,
    assert_memory_within_tolerance,
    assert_settled,
    delta,
    generate_codes,
    memory_growth,
    metric,
    storm_memory,
)
from tests.support.server_thread import ServerThread

pytestmark = pytest.mark.engine

SSE_STREAMS = 300
CHAT = "/v1/chat/completions"


async def _sse_stream(client: httpx.AsyncClient, model: str, rng: random.Random) -> str:
    """One streamed chat completion, abandoned at a random point; returns how it ended.

    Most are long (hundreds of tokens, seconds of decode): hanging up on those must cancel the gRPC
    stream and abort the engine request, or the storm would take minutes. Hang-ups are at a random
    time rather than after N frames: random weights produce few visible SSE events.
    """
    long = rng.random() < 0.7
    body = {
        "model": model,
        "messages": [{"role": "user", "content": "storm"}],
        "max_tokens": rng.randint(400, 1500) if long else rng.randint(2, 16),
        "stream": True,
    }
    how = rng.random()
    async with client.stream("POST", CHAT, json=body) as response:
        if response.status_code != 200:
            await response.aread()
            return f"HTTP {response.status_code}"
        if how < 0.2:
            return "disconnected long" if long else "disconnected"  # headers only, then hang up
        try:
            async with asyncio.timeout(rng.uniform(0.0, 1.0) if long or how < 0.9 else 60):
                async for line in response.aiter_lines():
                    if line == "data: [DONE]":
                        return "completed"
                    if line.startswith("data:") and '"error"' in line:
                        return "error event"
        except TimeoutError:
            return "disconnected long" if long else "disconnected"  # leaving the block hangs up
    return "ended without [DONE]"


async def test_sse_disconnect_storm(
    live_server: ServerThread, live_gateway: GatewayThread, metrics_url: str
) -> None:
    model = live_server.settings.model_id
    limit = asyncio.Semaphore(STORM_CONCURRENCY // 2)
    tally = Tally("sse disconnect storm")

    async def round_(streams: int, seed: int, count: bool) -> None:
        rng = random.Random(seed)
        # Abandoned connections are closed by httpx, never put back in the pool.
        pool = httpx.Limits(max_connections=STORM_CONCURRENCY, max_keepalive_connections=STORM_CONCURRENCY)
        async with httpx.AsyncClient(base_url=live_gateway.url, timeout=60, limits=pool) as client:

            async def one(stream_rng: random.Random) -> None:
                async with limit:
                    outcome = await _sse_stream(client, model, stream_rng)
                if count:
                    tally.add(outcome)

            await asyncio.gather(*(one(random.Random(rng.random())) for _ in range(streams)))

    gateway_metrics = live_gateway.url + "/metrics"
    await round_(STORM_WARM_UP // 2, seed=4, count=False)
    await asyncio.to_thread(assert_settled, live_server, metrics_url)
    disconnects_before = metric(gateway_metrics, "gptoss_gateway_client_disconnects_total")
    codes_before = generate_codes(metrics_url)
    before = storm_memory()
    started = time.monotonic()
    async with GaugeWatch(metrics_url) as watch:
        await asyncio.wait_for(round_(SSE_STREAMS, seed=5, count=True), 240)
    elapsed = time.monotonic() - started
    await asyncio.to_thread(assert_settled, live_server, metrics_url)
    assert wait_until(
        lambda: metric(gateway_metrics, "gptoss_gateway_requests_in_flight", route=CHAT) == 0, timeout=10
    )
    disconnects = metric(gateway_metrics, "gptoss_gateway_client_disconnects_total") - disconnects_before
    after = storm_memory()
    server = delta(generate_codes(metrics_url), codes_before)
    tally.report(
        seconds=round(elapsed, 1),
        gateway_disconnects=disconnects,
        server_codes=server,
        peaks=watch.peaks,
        rss_growth_mib=memory_growth(before, after),
    )

    assert tally.total == SSE_STREAMS
    assert set(tally.counts) <= {"disconnected long", "disconnected", "completed"}, tally.counts
    hung_up = tally.counts["disconnected long"] + tally.counts["disconnected"]
    assert hung_up >= SSE_STREAMS // 2 and tally.counts["completed"] > 0
    # The service saw only OK and CANCELLED, every cancel came from a hang-up the gateway noticed
    # (some hang-ups come after the last event: those are no cancellation), and the long streams
    # hung up on - hundreds of tokens, left within a second or two - were cancelled, not run out.
    assert set(server) <= {"CANCELLED", "OK"}, server
    assert sum(server.values()) == SSE_STREAMS
    assert server.get("CANCELLED", 0) <= disconnects <= hung_up
    assert server.get("CANCELLED", 0) >= 0.9 * tally.counts["disconnected long"], (server, tally.counts)
    assert watch.peaks["gptoss_active_streams"] > 0
    assert_memory_within_tolerance(before, after)
