"""Our gRPC service in a background thread of the bench process, on an engine that answers at once.

Why: the probes that measure the serving path's own cost (burst_probe, gateway_overhead
--engine scripted) need an engine whose steps take no time, so every millisecond measured is
ours, not vLLM's. The product runs only vLLM; this engine exists for measurements.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Sequence

from service.config import Settings
from service.engine import Engine, EngineStep, EngineTimings, SamplingOptions
from service.server import EngineFactory, GrpcService, start_vllm


class InstantEngine:
    """Replays `steps` (token ids per engine step) for every request, yielding between steps."""

    version = "instant"
    errored = False

    def __init__(self, steps: Sequence[Sequence[int]]) -> None:
        self._steps = [list(step) for step in steps]
        self._running: set[str] = set()

    async def generate(
        self, request_id: str, prompt_token_ids: list[int], options: SamplingOptions
    ) -> AsyncIterator[EngineStep]:
        self._running.add(request_id)
        budget = options.max_tokens
        try:
            for step in self._steps:
                await asyncio.sleep(0)
                step = step[:budget]
                budget -= len(step)
                stop = next((t for t in step if t in options.stop_token_ids), None)
                if stop is not None:
                    yield _last(step[: step.index(stop) + 1], "stop", stop)
                    return
                if budget <= 0:
                    yield _last(step, "length", None)
                    return
                yield EngineStep(token_ids=step)
            yield _last([], "length", None)
        finally:
            self._running.discard(request_id)

    async def abort(self, request_id: str) -> None:
        self._running.discard(request_id)

    def num_unfinished_requests(self) -> int:
        return len(self._running)

    async def shutdown(self) -> None:
        return None


def _last(tokens: list[int], reason: str, stop: int | None) -> EngineStep:
    return EngineStep(tokens, True, reason, stop, 0, EngineTimings(queue_wait=0.0, decode=0.0))


def instant_factory(engine: Engine) -> EngineFactory:
    async def factory(_settings: Settings) -> Engine:
        return engine

    return factory


class InProcessService:
    """A GrpcService on its own event loop in a daemon thread; `target` once started."""

    def __init__(self, settings: Settings, engine_factory: EngineFactory = start_vllm) -> None:
        self._settings = settings
        self._factory = engine_factory
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="bench-grpc", daemon=True)
        self._service: GrpcService | None = None

    def start(self, ready_timeout: float = 300.0) -> InProcessService:
        self._thread.start()

        async def boot() -> GrpcService:  # built on its loop: it attaches loop-bound callbacks
            service = GrpcService(self._settings, self._factory)
            await service.start()
            return service

        self._service = asyncio.run_coroutine_threadsafe(boot(), self._loop).result(60)
        asyncio.run_coroutine_threadsafe(self._service.wait_ready(), self._loop).result(ready_timeout)
        return self

    @property
    def target(self) -> str:
        assert self._service is not None
        return self._service.target

    def stop(self) -> None:
        if self._service is not None and not self._service.stopped.is_set():
            asyncio.run_coroutine_threadsafe(self._service.drain_and_stop(0.0), self._loop).result(60)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
