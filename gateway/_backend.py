"""The gateway's one grpc.aio channel to the service replicas, and the few calls it makes on it."""

from __future__ import annotations

import ipaddress
import json
import socket
import time
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import cast

import grpc
from gptoss.v1 import inference_pb2, inference_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

READINESS_SERVICE = "gptoss.v1.InferenceService"

Metadata = tuple[tuple[str, str], ...]


def _split_host_port(address: str) -> tuple[str, str]:
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"backend {address!r} is not host:port")
    return host.strip("[]"), port


def _resolve(host: str) -> str:
    """An IP literal for host: the ipv4:/ipv6: resolvers that carry several addresses need literals."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        infos.sort(key=lambda info: info[0] != socket.AF_INET)  # prefer IPv4, like most loopback setups
        return str(infos[0][4][0])


def channel_target(backends: Sequence[str]) -> str:
    """One gRPC target for all backends.

    A single backend keeps its name (the DNS resolver re-resolves it, and a DNS name with
    several A records is balanced too). Several become one `ipv4:`/`ipv6:` address list so a
    single channel with round_robin spreads requests and skips replicas that go away.
    """
    if len(backends) == 1:
        return backends[0]
    if any("://" in b or b.startswith(("dns:", "ipv4:", "ipv6:", "unix:")) for b in backends):
        raise ValueError(
            "several backends must be plain host:port; for DNS discovery give one dns:/// target"
        )
    hosts = [_split_host_port(b) for b in backends]
    ips = [(ipaddress.ip_address(_resolve(host)), port) for host, port in hosts]
    if all(ip.version == 4 for ip, _ in ips):
        return "ipv4:" + ",".join(f"{ip}:{port}" for ip, port in ips)
    if all(ip.version == 6 for ip, _ in ips):
        return "ipv6:" + ",".join(f"[{ip}]:{port}" for ip, port in ips)
    raise ValueError("several backends must all be IPv4 or all IPv6")


def service_config(*, health_check: bool) -> str:
    """round_robin everywhere, plus retries of UNAVAILABLE, which the service only returns
    before any work was done (starting, draining, connection refused): safe to try another replica."""
    config: dict[str, object] = {
        "loadBalancingConfig": [{"round_robin": {}}],
        "methodConfig": [
            {
                "name": [{"service": "gptoss.v1.InferenceService"}],
                "retryPolicy": {
                    "maxAttempts": 3,
                    "initialBackoff": "0.05s",
                    "maxBackoff": "0.5s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ],
    }
    if health_check:
        config["healthCheckConfig"] = {"serviceName": READINESS_SERVICE}
    return json.dumps(config)


@dataclass(frozen=True)
class ModelInfo:
    model_id: str
    max_context_length: int
    profile: str
    engine_version: str


class Backend:
    """Owns the channel; every RPC the routes make goes through here so metadata and deadlines
    are applied in one place."""

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
        self._channel = grpc.aio.insecure_channel(
            self.target,
            options=[
                ("grpc.service_config", service_config(health_check=health_check)),
                ("grpc.enable_retries", 1),
                ("grpc.keepalive_time_ms", 30_000),
                ("grpc.keepalive_timeout_ms", 10_000),
                ("grpc.max_receive_message_length", 64 * 1024 * 1024),
                ("grpc.max_send_message_length", 64 * 1024 * 1024),
            ],
        )
        self._stub = inference_pb2_grpc.InferenceServiceStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)
        self._auth: Metadata = (("authorization", f"Bearer {api_key}"),) if api_key else ()
        self.timeout = timeout
        self._ttl = model_info_ttl
        self._info: ModelInfo | None = None
        self._info_at = 0.0

    def _metadata(self, extra: Metadata) -> Metadata:
        return self._auth + extra

    def generate(
        self, request: inference_pb2.GenerateRequest, metadata: Metadata = ()
    ) -> grpc.aio.UnaryStreamCall[inference_pb2.GenerateRequest, inference_pb2.GenerateResponse]:
        """Start a Generate stream; the caller reads it and must cancel it when abandoned."""
        call: grpc.aio.UnaryStreamCall[inference_pb2.GenerateRequest, inference_pb2.GenerateResponse] = (
            self._stub.Generate(request, metadata=self._metadata(metadata), timeout=self.timeout)
        )
        return call

    async def model_info(self, metadata: Metadata = ()) -> ModelInfo:
        """GetModelInfo, cached for a while: /v1/models is polled by clients and must be cheap."""
        now = time.monotonic()
        if self._info is not None and now - self._info_at < self._ttl:
            return self._info
        reply = await self._stub.GetModelInfo(
            inference_pb2.GetModelInfoRequest(), metadata=self._metadata(metadata), timeout=10.0
        )
        self._info = ModelInfo(reply.model_id, reply.max_context_length, reply.profile, reply.engine_version)
        self._info_at = now
        return self._info

    async def ready(self, deadline: float = 2.0) -> bool:
        """True when a replica reports the inference service SERVING."""
        try:
            reply = await self._health.Check(
                health_pb2.HealthCheckRequest(service=READINESS_SERVICE),
                metadata=self._metadata(()),
                timeout=deadline,
            )
        except grpc.aio.AioRpcError:
            return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    async def close(self, grace: float | None = None) -> None:
        await self._channel.close(grace)


async def read_events(
    call: grpc.aio.UnaryStreamCall[inference_pb2.GenerateRequest, inference_pb2.GenerateResponse],
) -> AsyncGenerator[inference_pb2.GenerateResponse, None]:
    """The call's events; the call is cancelled if the reader stops early (client gone, error)."""
    try:
        while True:
            event = await call.read()
            if event is grpc.aio.EOF:
                return
            yield cast(inference_pb2.GenerateResponse, event)
    finally:
        if not call.done():
            call.cancel()
