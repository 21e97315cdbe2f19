"""Cancellation storm on the real server and vLLM CPU engine: gRPC streams opened and abandoned at
random points by grpc.aio cancel. Afterwards nothing may be left running or allocated:

- the engine's own counters: AsyncLLM's unfinished requests = 0, and the engine-core scheduler's
  running / waiting requests and KV-cache usage (`gptoss_engine_*`, fed by vLLM's stat logger) = 0,
  after having been seen above 0 during the storm (so the gauges are live, not merely zero);
- our side: `gptoss_active_streams` = 0 (seen > 0 during the storm), no `GenerationStream` object
  alive, and no admission waiter left;
- memory: RSS near its baseline (tolerances and why: `TOLERANCE` in tests/reliability/helpers.py).

The same storm by SSE disconnect through the gateway: test_sse_disconnect_storm.py.
"""

from __future__ import annotations

import asyncio
import random
import time

import grpc
import pytest
from gptoss.v1 import inference_pb2 as pb
from gptoss.v1 import inference_pb2_grpc

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
    storm_memory,
)
from tests.support.server_thread import ServerThread

pytestmark = pytest.mark.engine

GRPC_STREAMS = 1000


async def _grpc_stream(stub: inference_pb2_grpc.InferenceServiceStub, rng: random.Random, index: int) -> str:
    """Open one stream and abandon it at a random point; returns the final status code's name."""
    # Two prompt lengths only: every new batch shape costs the model runner some memory once.
    prompt = [200006, 1428, 200008, *(rng.randrange(1000, 199000) for _ in range(rng.choice((5, 21))))]
    max_tokens = rng.randint(2, 24)
    request = pb.GenerateRequest(
        prompt_token_ids=prompt, max_tokens=max_tokens, ignore_eos=True, request_id=f"storm-{index}"
    )
    call = stub.Generate(request, timeout=60)
    how = rng.random()
    try:
        if how < 0.15:
            pass  # cancel at once: often before the server has even admitted it
        elif how < 0.30:
            await asyncio.sleep(rng.uniform(0, 0.05))  # cancel unread, somewhere in prefill or decode
        else:
            stop_after = rng.randint(1, max_tokens + 1) if how < 0.9 else None  # 10% read to the end
            received = 0
            async for _ in call:
                received += 1
                if stop_after is not None and received >= stop_after:
                    break
        call.cancel()
        code = await call.code()
    except grpc.aio.AioRpcError as error:
        code = error.code()
    return str(code.name)


async def _grpc_round(target: str, streams: int, seed: int, tally: Tally | None) -> None:
    rng = random.Random(seed)
    limit = asyncio.Semaphore(STORM_CONCURRENCY)
    async with grpc.aio.insecure_channel(target) as channel:
        stub = inference_pb2_grpc.InferenceServiceStub(channel)

        async def one(index: int, stream_rng: random.Random) -> None:
            async with limit:
                outcome = await _grpc_stream(stub, stream_rng, index)
            if tally is not None:
                tally.add(outcome)

        await asyncio.gather(*(one(i, random.Random(rng.random())) for i in range(streams)))


async def test_grpc_cancellation_storm(live_server: ServerThread, metrics_url: str) -> None:
    await _grpc_round(live_server.target, STORM_WARM_UP, seed=1, tally=None)  # fill pools and caches first
    await asyncio.to_thread(assert_settled, live_server, metrics_url)
    before = storm_memory()
    codes_before = generate_codes(metrics_url)

    tally = Tally("grpc cancellation storm")
    started = time.monotonic()
    async with GaugeWatch(metrics_url) as watch:
        await asyncio.wait_for(_grpc_round(live_server.target, GRPC_STREAMS, seed=2, tally=tally), 240)
    elapsed = time.monotonic() - started
    await asyncio.to_thread(assert_settled, live_server, metrics_url)
    after = storm_memory()
    server = delta(generate_codes(metrics_url), codes_before)
    tally.report(
        seconds=round(elapsed, 1),
        server_codes=server,
        peaks=watch.peaks,
        rss_growth_mib=memory_growth(before, after),
    )

    assert tally.total == GRPC_STREAMS
    assert set(tally.counts) <= {"CANCELLED", "OK"}, tally.counts  # nothing else, INTERNAL least of all
    assert tally.counts["CANCELLED"] >= GRPC_STREAMS // 2 and tally.counts["OK"] > 0
    # Server side: every admitted stream ended OK or CANCELLED (a cancel racing the last event may
    # be OK there); streams cancelled before the server saw them are in neither.
    assert set(server) <= {"CANCELLED", "OK"}, server
    assert server.get("OK", 0) >= tally.counts["OK"] and server.get("CANCELLED", 0) > GRPC_STREAMS // 2
    assert sum(server.values()) <= GRPC_STREAMS
    # The gauges are live (they moved), so their 0 afterwards means something. The engine never
    # queues here (48 streams < max_num_seqs 64), so "waiting" is only checked to end at 0.
    for name in (
        "gptoss_active_streams",
        "gptoss_engine_requests_running",
        "gptoss_engine_kv_cache_usage_ratio",
    ):
        assert watch.peaks[name] > 0, watch.peaks
    assert_memory_within_tolerance(before, after)
