"""The grpc.aio server: servicer + health + reflection, engine start, watchdog, graceful drain.

`GrpcService` is usable in-process (tests inject a scripted engine; the default starts vLLM).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import grpc
from gptoss.v1 import inference_pb2, inference_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from service import health, metrics, structured_checks
from service.auth import ApiKeyInterceptor, ApiKeys
from service.config import Settings
from service.decode_guard import MalformedRequestGuard
from service.engine import Engine, VllmEngine
from service.lifecycle import Phase, ServiceState
from service.prompt_renderer import PromptRenderer
from service.servicer import InferenceServicer
from service.warmup import warm_up

log = logging.getLogger(__name__)
EngineFactory = Callable[[Settings], Awaitable[Engine]]


async def start_vllm(settings: Settings) -> Engine:
    return await VllmEngine.start(settings)


class GrpcService:
    """One replica: listen first (liveness), start the engine, then flip readiness."""

    def __init__(self, settings: Settings, engine_factory: EngineFactory = start_vllm) -> None:
        self.settings = settings
        self.state = ServiceState(
            settings.max_concurrent_requests,
            queue_size=settings.admission_queue_size,
            queue_timeout=settings.admission_queue_timeout_seconds,
            per_caller_limit=max(1, math.ceil(settings.caller_max_share * settings.max_concurrent_requests)),
        )
        self.keys = ApiKeys(settings.all_api_keys(), settings.trusted_gateway_keys)
        self._engine_factory = engine_factory
        self.renderer = PromptRenderer(settings.render_workers)
        self._server = self._build_server()
        self.port = 0
        self.metrics_port = 0
        self._engine_task: asyncio.Task[None] | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self.engine_start_seconds: float | None = None
        self.exit_code = 0
        self.stopped = asyncio.Event()

    @property
    def target(self) -> str:
        return f"{self.settings.host}:{self.port}"

    def _build_server(self) -> grpc.aio.Server:
        # Outermost first: keys are checked before the body is parsed (a bad body of a caller
        # without a key is UNAUTHENTICATED).
        interceptors: list[grpc.aio.ServerInterceptor] = (
            [ApiKeyInterceptor(self.keys)] if self.keys.enabled else []
        )
        server = grpc.aio.server(
            interceptors=[*interceptors, MalformedRequestGuard()],
            options=[
                ("grpc.max_receive_message_length", self.settings.max_request_bytes),
                ("grpc.so_reuseport", 0),
                # Clients re-resolve (and round_robin sees new replicas) when connections age out;
                # the grace lets streams in flight finish.
                ("grpc.max_connection_age_ms", int(self.settings.max_connection_age_seconds * 1000)),
                ("grpc.max_connection_age_grace_ms", 15 * 60 * 1000),
                # The gateway pings every 30 s to spot dead replicas; without this the server
                # answers its pings with GOAWAY too_many_pings and drops the connection.
                ("grpc.http2.min_recv_ping_interval_without_data_ms", 10_000),
                ("grpc.keepalive_permit_without_calls", 1),
            ],
        )
        inference_pb2_grpc.add_InferenceServiceServicer_to_server(
            InferenceServicer(self.settings, self.state, self.renderer, self.keys), server
        )
        health_pb2_grpc.add_HealthServicer_to_server(health.attach_health(self.state), server)
        services = (
            inference_pb2.DESCRIPTOR.services_by_name["InferenceService"].full_name,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        )
        reflection.enable_server_reflection(services, server)
        return server

    def _bind(self) -> int:
        address = f"{self.settings.host}:{self.settings.port}"
        if not self.settings.tls_cert:
            return self._server.add_insecure_port(address)
        credentials = grpc.ssl_server_credentials(
            [(Path(self.settings.tls_key or "").read_bytes(), Path(self.settings.tls_cert).read_bytes())],
            root_certificates=Path(self.settings.tls_client_ca).read_bytes()
            if self.settings.tls_client_ca
            else None,
            require_client_auth=bool(self.settings.tls_client_ca),
        )
        return self._server.add_secure_port(address, credentials)

    async def start(self) -> None:
        """Listen now; the engine starts in the background (readiness follows it)."""
        self.port = self._bind()
        await self._server.start()
        metrics.bind_state(self.state)
        if self.settings.metrics_port is not None:
            host = self.settings.metrics_host
            self.metrics_port = metrics.serve_metrics(host, self.settings.metrics_port)
            log.info("Prometheus metrics on http://%s:%d/metrics", host, self.metrics_port)
        log.info(
            "gRPC listening on %s (profile %s, model %s)",
            self.target,
            self.settings.profile,
            self.settings.model_id,
        )
        self._engine_task = asyncio.create_task(self._start_engine())

    async def wait_ready(self) -> None:
        assert self._engine_task is not None
        await asyncio.shield(self._engine_task)

    async def _start_engine(self) -> None:
        started = time.monotonic()
        try:
            await self.renderer.start()
            # xgrammar's import takes seconds: pay it beside the engine start, not in a request.
            checks = asyncio.create_task(asyncio.to_thread(structured_checks.warm_up))
            engine = await self._engine_factory(self.settings)
            await checks
            self.state.engine = engine
            self.state.engine_version = str(getattr(engine, "version", ""))
            metrics.BUILD.info(
                {"version": "0.1.0", "engine": self.state.engine_version, "profile": self.settings.profile}
            )
            await warm_up(engine, self.settings)  # readiness stays NOT_SERVING until it is done
        except Exception:
            log.exception("engine failed to start")
            self.state.set_phase(Phase.DEAD)
            self.exit_code = 1
            self.stopped.set()
            raise
        self.engine_start_seconds = time.monotonic() - started
        log.info("engine ready in %.1fs: serving", self.engine_start_seconds)
        self.state.set_phase(Phase.SERVING)
        self._watchdog = asyncio.create_task(self._watch_engine(engine))

    async def _watch_engine(self, engine: Engine) -> None:
        """A dead engine cannot recover in-process: go NOT_SERVING and exit non-zero."""
        while not engine.errored:  # noqa: ASYNC110 - vLLM exposes a flag, not an event
            await asyncio.sleep(0.5)
        log.error("engine died: readiness and liveness NOT_SERVING, shutting down")
        self.state.set_phase(Phase.DEAD)
        self.exit_code = 1
        await self._server.stop(grace=1.0)
        self.renderer.close()
        # No engine.shutdown() here: on a dead engine it blocks ~10 s and can leave the worker
        # running; exiting lets vLLM's own process cleanup take the children down.
        self.stopped.set()

    async def drain_and_stop(self, grace: float | None = None) -> None:
        """SIGTERM path: stop admitting, let in-flight streams finish within the grace, stop."""
        grace = self.settings.drain_grace_seconds if grace is None else grace
        began = time.monotonic()
        if self.state.phase is not Phase.DEAD:
            self.state.set_phase(Phase.DRAINING)
        try:
            await asyncio.wait_for(self.state.idle.wait(), grace)
        except TimeoutError:
            pass
        # Closing the port at once would race the health watchers: a call they sent before they
        # saw NOT_SERVING would meet a stopping server, which cancels calls no handler took yet
        # (CANCELLED, not retryable: grpc/grpc#41785). Open a moment longer, such calls get
        # UNAVAILABLE DRAINING, which the channel's retry policy sends to another replica.
        announce = min(self.settings.drain_announce_seconds, grace)
        await asyncio.sleep(max(0.0, began + announce - time.monotonic()))
        if self.state.active_streams:
            log.warning(
                "drain grace over with %d streams in flight: cancelling them", self.state.active_streams
            )
        await self._server.stop(grace=0.5)
        self.renderer.close()
        for task in (self._watchdog, self._engine_task):
            if task is not None and not task.done():
                task.cancel()
        if self.state.engine is not None:
            await self.state.engine.shutdown()
        self.stopped.set()
