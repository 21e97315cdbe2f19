"""Service state shared by the servicer, health and shutdown: engine phase and admission."""

from __future__ import annotations

import asyncio
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

    Admission is checked before any engine work, so overload never reaches vLLM.
    """

    def __init__(self, max_concurrent_requests: int) -> None:
        self.phase = Phase.STARTING
        self.engine: Engine | None = None
        self.engine_version = ""
        self.max_concurrent_requests = max_concurrent_requests
        self.active_streams = 0
        self.idle = asyncio.Event()
        self.idle.set()
        self._listeners: list[Callable[[Phase], None]] = []

    def on_phase_change(self, listener: Callable[[Phase], None]) -> None:
        self._listeners.append(listener)

    def set_phase(self, phase: Phase) -> None:
        if phase is self.phase or self.phase is Phase.DEAD:
            return
        log.info("service phase: %s -> %s", self.phase.value, phase.value)
        self.phase = phase
        for listener in self._listeners:
            listener(phase)

    def serving_engine(self) -> Engine:
        """The engine, if new work may start now; else the UNAVAILABLE error to return."""
        if self.phase is Phase.STARTING:
            raise unavailable("the engine is still starting; retry shortly", "ENGINE_STARTING")
        if self.phase is Phase.DRAINING:
            raise unavailable("the server is shutting down; retry on another replica", "DRAINING")
        if self.phase is Phase.DEAD or self.engine is None or self.engine.errored:
            self.set_phase(Phase.DEAD)
            raise unavailable("the engine has failed; this replica is restarting", "ENGINE_DEAD")
        return self.engine

    def admit(self) -> Admission:
        if self.active_streams >= self.max_concurrent_requests:
            raise overloaded(self.max_concurrent_requests)
        self.active_streams += 1
        self.idle.clear()
        return Admission(self)


class Admission:
    """One admitted stream; release exactly once."""

    def __init__(self, state: ServiceState) -> None:
        self._state: ServiceState | None = state

    def release(self) -> None:
        if self._state is not None:
            self._state.active_streams -= 1
            if not self._state.active_streams:
                self._state.idle.set()
            self._state = None


__all__ = ["Admission", "Phase", "ServiceError", "ServiceState"]
