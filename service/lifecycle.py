"""Service state shared by the servicer, health and shutdown: engine phase and admission."""

from __future__ import annotations

import asyncio
import collections
import enum
import logging
from collections.abc import Callable

import grpc

from service.engine import Engine
from service.errors import ServiceError, overloaded, unavailable

log = logging.getLogger(__name__)


class Phase(enum.Enum):
    STARTING = "starting"
    SERVING = "serving"
    DRAINING = "draining"
    DEAD = "dead"


class ServiceState:
    """Which phase we are in, the engine once it exists, and the concurrency gate.

    Admission is checked before any engine work, so overload never reaches vLLM. With
    `queue_size` > 0, requests beyond the limit wait (first come, first served) for a slot for
    up to `queue_timeout` seconds; a full queue or an expired wait is RESOURCE_EXHAUSTED.
    """

    def __init__(self, max_concurrent_requests: int, queue_size: int = 0, queue_timeout: float = 5.0) -> None:
        self.phase = Phase.STARTING
        self.engine: Engine | None = None
        self.engine_version = ""
        self.max_concurrent_requests = max_concurrent_requests
        self.queue_size = queue_size
        self.queue_timeout = queue_timeout
        self.active_streams = 0
        self.idle = asyncio.Event()
        self.idle.set()
        self._listeners: list[Callable[[Phase], None]] = []
        # Waiters for a slot, oldest first; a released slot is handed to the first live one.
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    @property
    def queued(self) -> int:
        """Requests waiting for a slot now."""
        return sum(1 for waiter in self._waiters if not waiter.done())

    def on_phase_change(self, listener: Callable[[Phase], None]) -> None:
        self._listeners.append(listener)

    def set_phase(self, phase: Phase) -> None:
        if phase is self.phase or self.phase is Phase.DEAD:
            return
        log.info("service phase: %s -> %s", self.phase.value, phase.value)
        self.phase = phase
        if phase in (Phase.DRAINING, Phase.DEAD):
            self._fail_waiters()
        for listener in self._listeners:
            listener(phase)

    def serving_engine(self) -> Engine:
        """The engine, if new work may start now; else the UNAVAILABLE error to return."""
        if self.phase is Phase.STARTING:
            raise unavailable("the engine is still starting; retry shortly", "ENGINE_STARTING")
        if self.phase is Phase.DRAINING:
            raise unavailable("the server is shutting down; retry on another replica", "DRAINING")
        return self.admitted_engine()

    def admitted_engine(self) -> Engine:
        """The engine for work already admitted: a drain lets it finish; only a dead engine stops it."""
        if self.engine is None or self.engine.errored or self.phase is Phase.DEAD:
            self.set_phase(Phase.DEAD)
            raise unavailable("the engine has failed; this replica is restarting", "ENGINE_DEAD")
        return self.engine

    async def admit(self) -> Admission:
        """A slot now, or (with a queue) after waiting for one; else RESOURCE_EXHAUSTED.

        A waiter that is cancelled (client gone, deadline) leaves the queue; one whose slot
        arrived just as it was cancelled passes the slot on, so no slot is ever lost.
        """
        if self.active_streams < self.max_concurrent_requests and not self.queued:
            return self._take()
        if self.queued >= self.queue_size:
            raise overloaded(self.max_concurrent_requests)
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(self.queue_timeout):
                await waiter
        except BaseException as exc:
            handed = waiter.done() and not waiter.cancelled() and waiter.exception() is None
            if isinstance(exc, TimeoutError):
                if handed:  # the slot came just as the wait ran out: use it
                    return Admission(self)
                raise ServiceError(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"server is at its concurrency limit ({self.max_concurrent_requests} streams) and no "
                    f"slot freed within {self.queue_timeout:g}s; retry later",
                    "OVERLOADED",
                    retry_after_s=1,
                ) from None
            if handed:  # cancelled (client gone) just as a slot arrived: pass it on
                self._release_slot()
            raise
        finally:
            if not waiter.done():
                waiter.cancel()
            if waiter in self._waiters:
                self._waiters.remove(waiter)
        # The slot was handed over by _release_slot: active_streams already counts it.
        return Admission(self)

    def _take(self) -> Admission:
        self.active_streams += 1
        self.idle.clear()
        return Admission(self)

    def _release_slot(self) -> None:
        """Hand the slot to the oldest live waiter, or give it back."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.active_streams -= 1
        if not self.active_streams:
            self.idle.set()

    def _fail_waiters(self) -> None:
        """Draining or dead: nobody waiting will get a slot here."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(
                    unavailable("the server is shutting down; retry on another replica", "DRAINING")
                    if self.phase is Phase.DRAINING
                    else unavailable("the engine has failed; this replica is restarting", "ENGINE_DEAD")
                )


class Admission:
    """One admitted stream; release exactly once."""

    def __init__(self, state: ServiceState) -> None:
        self._state: ServiceState | None = state

    def release(self) -> None:
        if self._state is not None:
            self._state._release_slot()
            self._state = None


__all__ = ["Admission", "Phase", "ServiceError", "ServiceState"]
