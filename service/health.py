"""Standard grpc.health.v1: LIVENESS_SERVICE ("") and READINESS_SERVICE (`gptoss.contract`).

Readiness is SERVING only while the engine can take requests (not while starting, draining
or dead); liveness goes NOT_SERVING only when the engine is dead, so an orchestrator restarts us.
"""

from __future__ import annotations

import asyncio

from gptoss.contract import LIVENESS_SERVICE, READINESS_SERVICE
from grpc_health.v1 import health_pb2
from grpc_health.v1.health import aio as health_aio

from service.lifecycle import Phase, ServiceState

_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def attach_health(state: ServiceState) -> health_aio.HealthServicer:
    """A health servicer that follows the service phase."""
    servicer = health_aio.HealthServicer()
    pending: set[asyncio.Task[None]] = set()

    async def apply(phase: Phase) -> None:
        await servicer.set(LIVENESS_SERVICE, _NOT_SERVING if phase is Phase.DEAD else _SERVING)
        await servicer.set(READINESS_SERVICE, _SERVING if phase is Phase.SERVING else _NOT_SERVING)

    def on_change(phase: Phase) -> None:
        task = asyncio.get_running_loop().create_task(apply(phase))
        pending.add(task)
        task.add_done_callback(pending.discard)

    state.on_phase_change(on_change)
    on_change(state.phase)
    return servicer
