"""Service state shared by the servicer, health and shutdown: engine phase and admission."""

from __future__ import annotations

import asyncio
import collections
import enum
import logging
from collections.abc import Callable

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

    Admission is checked before any engine work, so overload never reaches vLLM. Each caller
    (`service.auth.caller_identity`) may hold at most `per_caller_limit` slots, so one caller
    cannot take every slot. With `queue_size` > 0, requests beyond either limit wait (first come,
    first served among those that may run) for up to `queue_timeout` seconds; a full queue or an
    expired wait is RESOURCE_EXHAUSTED.
    """

    def __init__(
        self,
        max_concurrent_requests: int,
        queue_size: int = 0,
        queue_timeout: float = 5.0,
        per_caller_limit: int | None = None,
    ) -> None:
        self.phase = Phase.STARTING
        self.engine: Engine | None = None
        self.engine_version = ""
        self.max_concurrent_requests = max_concurrent_requests
        self.per_caller_limit = per_caller_limit or max_concurrent_requests
        self.queue_size = queue_size
        self.queue_timeout = queue_timeout
        self.active_streams = 0
        self.idle = asyncio.Event()
        self.idle.set()
        self._listeners: list[Callable[[Phase], None]] = []
        self._by_caller: collections.Counter[str] = collections.Counter()
        # Waiters for a slot, oldest first; a released slot goes to the first live one that may run.
        self._waiters: collections.deque[tuple[asyncio.Future[None], str]] = collections.deque()

    @property
    def queued(self) -> int:
        """Requests waiting for a slot now."""
        return sum(1 for waiter, _ in self._waiters if not waiter.done())

    def streams_of(self, caller: str) -> int:
        return self._by_caller[caller]

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

    async def admit(self, caller: str = "") -> Admission:
        """A slot now, or (with a queue) after waiting for one; else RESOURCE_EXHAUSTED.

        A waiter that is cancelled (client gone, deadline) leaves the queue; one whose slot
        arrived just as it was cancelled passes the slot on, so no slot is ever lost.
        """
        # Free slots are always handed at once to waiters that may run, so a slot free here is
        # one no waiter may take: a newcomer under its own limit never overtakes anyone.
        if self._may_run(caller):
            return self._take(caller)
        if self.queued >= self.queue_size:
            raise overloaded(self._refusal(caller))
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (waiter, caller)
        self._waiters.append(entry)
        try:
            async with asyncio.timeout(self.queue_timeout):
                await waiter
        except BaseException as exc:
            handed = waiter.done() and not waiter.cancelled() and waiter.exception() is None
            if isinstance(exc, TimeoutError):
                if handed:  # the slot came just as the wait ran out: use it
                    return Admission(self, caller)
                raise overloaded(
                    f"{self._refusal(caller)} and no slot freed within {self.queue_timeout:g}s"
                ) from None
            if handed:  # cancelled (client gone) just as a slot arrived: pass it on
                self._release_slot(caller)
            raise
        finally:
            if not waiter.done():
                waiter.cancel()
            if entry in self._waiters:
                self._waiters.remove(entry)
        # The slot was handed over by _release_slot: the counts already include it.
        return Admission(self, caller)

    def _may_run(self, caller: str) -> bool:
        return (
            self.active_streams < self.max_concurrent_requests
            and self._by_caller[caller] < self.per_caller_limit
        )

    def _refusal(self, caller: str) -> str:
        if self.active_streams < self.max_concurrent_requests:
            return f"this caller holds its share of the server ({self.per_caller_limit} streams); retry later"
        return f"server is at its concurrency limit ({self.max_concurrent_requests} streams); retry later"

    def _take(self, caller: str) -> Admission:
        self.active_streams += 1
        self._by_caller[caller] += 1
        self.idle.clear()
        return Admission(self, caller)

    def _release_slot(self, caller: str) -> None:
        """Give the slot back, then hand free slots to the oldest live waiters that may run."""
        self.active_streams -= 1
        self._by_caller[caller] -= 1
        if self._by_caller[caller] <= 0:
            del self._by_caller[caller]
        for entry in list(self._waiters):
            waiter, waiting_caller = entry
            if waiter.done():
                continue
            if self.active_streams >= self.max_concurrent_requests:
                break
            if self._may_run(waiting_caller):
                self._waiters.remove(entry)
                self.active_streams += 1
                self._by_caller[waiting_caller] += 1
                waiter.set_result(None)
        if not self.active_streams:
            self.idle.set()

    def _fail_waiters(self) -> None:
        """Draining or dead: nobody waiting will get a slot here."""
        while self._waiters:
            waiter, _ = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(
                    unavailable("the server is shutting down; retry on another replica", "DRAINING")
                    if self.phase is Phase.DRAINING
                    else unavailable("the engine has failed; this replica is restarting", "ENGINE_DEAD")
                )


class Admission:
    """One admitted stream; release exactly once."""

    def __init__(self, state: ServiceState, caller: str = "") -> None:
        self._state: ServiceState | None = state
        self._caller = caller

    def release(self) -> None:
        if self._state is not None:
            self._state._release_slot(self._caller)
            self._state = None


__all__ = ["Admission", "Phase", "ServiceError", "ServiceState"]
