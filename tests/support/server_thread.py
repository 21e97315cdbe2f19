"""Run a GrpcService on its own event loop in a background thread.

Tests stay synchronous (OpenAI SDK, subprocesses, blocking stubs) while the server keeps
serving; engine state is read from the test thread (counters only).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from service.config import Settings
from service.engine import Engine
from service.server import EngineFactory, GrpcService, start_vllm

T = TypeVar("T")


class ServerThread:
    def __init__(self, settings: Settings, engine_factory: EngineFactory = start_vllm) -> None:
        self.settings = settings
        self._factory = engine_factory
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="grpc-server", daemon=True)
        self.service: GrpcService | None = None

    def start(self, ready_timeout: float = 300.0, wait_ready: bool = True) -> ServerThread:
        """Listen, start the engine, and (by default) wait until it serves."""
        self._thread.start()

        async def boot() -> GrpcService:
            service = GrpcService(self.settings, self._factory)
            await service.start()
            return service

        self.service = self.call(boot())
        if wait_ready:
            self.call(self.service.wait_ready(), timeout=ready_timeout)
        return self

    def run_soon(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    @property
    def target(self) -> str:
        assert self.service is not None
        return self.service.target

    @property
    def engine(self) -> Engine:
        assert self.service is not None and self.service.state.engine is not None
        return self.service.state.engine

    def stop(self, grace: float = 0.0) -> None:
        if self.service is not None and not self.service.stopped.is_set():
            self.call(self.service.drain_and_stop(grace), timeout=grace + 60)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
