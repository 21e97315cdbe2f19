"""The gateway's one channel to the service replicas (gptoss.AsyncClient), and the few calls it makes."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import grpc
from gptoss import (
    NO_RETRY,
    AsyncClient,
    AsyncEventStream,
    GenerateOptions,
    GptossError,
    ModelInfo,
    ServingStatus,
)
from gptoss.balancing import balanced_channel_options, channel_target
from gptoss.contract import READINESS_SERVICE, REQUEST_ID_METADATA

from gateway._errors import engine_starting

Metadata = tuple[tuple[str, str], ...]


class Backend:
    """The gateway's one channel, wrapped in `gptoss.AsyncClient`: every RPC the routes make goes
    through here, so metadata, deadlines and the "engine still starting" state live in one place."""

    def __init__(
        self,
        backends: Sequence[str],
        *,
        api_key: str | None = None,
        timeout: float | None = None,
        model_info_ttl: float = 30.0,
        health_check: bool = True,
    ) -> None:
        self.target = channel_target(backends)
        # round_robin over the replicas, health checking on readiness, keepalive (gptoss.balancing).
        channel = grpc.aio.insecure_channel(
            self.target, options=balanced_channel_options(health_check=health_check)
        )
        self._channel = channel
        # Retries of UNAVAILABLE are the channel's (service config, before any response); the
        # client adds none, so nothing is ever retried after the first event.
        self.client = AsyncClient(
            self.target, channel=channel, api_key=api_key, timeout=timeout, retry=NO_RETRY
        )
        self._ttl = model_info_ttl
        self._info: ModelInfo | None = None
        self._info_at = 0.0
        self._serving_seen = False

    def generate(self, options: GenerateOptions, call: CallMetadata) -> AsyncEventStream:
        """Start a Generate stream; the caller reads it and must `aclose()` it when abandoned."""
        return self.client.generate(request_id=call.request_id, metadata=call.extra, **options)

    async def model_info(self, call: CallMetadata) -> ModelInfo:
        """GetModelInfo, cached for a while: /v1/models is polled by clients and must be cheap."""
        now = time.monotonic()
        if self._info is not None and now - self._info_at < self._ttl:
            return self._info
        self._info = await self.client.model_info(timeout=10.0, metadata=call.all)
        self._info_at = now
        return self._info

    async def ready(self, deadline: float = 2.0) -> bool:
        """True when a replica reports the inference service SERVING."""
        try:
            status = await self.client.health(READINESS_SERVICE, timeout=deadline)
        except GptossError:
            return False
        if status is ServingStatus.SERVING:
            self._serving_seen = True
        return status is ServingStatus.SERVING

    async def require_started(self) -> None:
        """Until a replica was first seen SERVING the engine is loading: API calls get a clear 503
        `engine_starting` (with Retry-After) instead of a generic failure. Afterwards, a no-op."""
        if not self._serving_seen and not await self.ready():
            raise engine_starting()

    async def close(self, grace: float | None = None) -> None:
        await self._channel.close(grace)


@dataclass(frozen=True)
class CallMetadata:
    """What one route forwards beside its RPC: the request id, and the rest of the caller's metadata."""

    request_id: str
    extra: Metadata

    @classmethod
    def of(cls, request_id: str, metadata: Metadata) -> CallMetadata:
        """Split x-request-id off (the client sends it from `request_id`, once)."""
        return cls(request_id, tuple(kv for kv in metadata if kv[0] != REQUEST_ID_METADATA))

    @property
    def all(self) -> Metadata:
        return ((REQUEST_ID_METADATA, self.request_id), *self.extra)
