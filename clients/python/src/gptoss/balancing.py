"""Channel settings for a client that spreads calls over several service replicas (the gateway).

One channel, round_robin over all replicas, gRPC health checking on the readiness service (a
replica that is starting or draining gets no calls), transparent retries of UNAVAILABLE (which the
service returns only before doing any work), and keepalive so dead connections are noticed.

    AsyncClient(channel_target(backends), channel_options=balanced_channel_options(), retry=NO_RETRY)
"""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import Sequence
from typing import Any

from gptoss.contract import READINESS_SERVICE
from gptoss.v1 import inference_pb2 as pb

# The proto's service name (the retry policy's scope); equal to READINESS_SERVICE by design, not by copy.
_GRPC_SERVICE = pb.DESCRIPTOR.services_by_name["InferenceService"].full_name

KEEPALIVE_TIME_MS = 30_000
KEEPALIVE_TIMEOUT_MS = 10_000
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


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
    if not backends:
        raise ValueError("no backend given")
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
                "name": [{"service": _GRPC_SERVICE}],
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


def balanced_channel_options(*, health_check: bool = True) -> list[tuple[str, Any]]:
    """grpc channel arguments for `ClientOptions.channel_options`: the gateway's channel."""
    return [
        ("grpc.service_config", service_config(health_check=health_check)),
        ("grpc.enable_retries", 1),
        ("grpc.keepalive_time_ms", KEEPALIVE_TIME_MS),
        ("grpc.keepalive_timeout_ms", KEEPALIVE_TIMEOUT_MS),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ]
