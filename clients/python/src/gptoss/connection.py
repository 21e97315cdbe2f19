"""Channel, credentials, metadata and retry settings shared by the sync and async clients."""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

import grpc

from gptoss.contract import READINESS_SERVICE, REQUEST_ID_METADATA
from gptoss.errors import GptossError

DEFAULT_TARGET = "127.0.0.1:50051"
SERVICE_NAME = READINESS_SERVICE  # the older name of gptoss.contract.READINESS_SERVICE, kept for callers

Metadata = Sequence[tuple[str, str | bytes]]
PemSource = bytes | str | Path


def _read_pem(source: PemSource | None) -> bytes | None:
    """PEM bytes as given, or read from a path (str or Path)."""
    if source is None or isinstance(source, bytes):
        return source
    return Path(source).read_bytes()


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """TLS for the channel: root certs (None = system roots), and a client cert/key pair for mTLS."""

    root_certificates: PemSource | None = None
    client_certificate: PemSource | None = None
    client_key: PemSource | None = None
    server_name_override: str | None = None

    def credentials(self) -> grpc.ChannelCredentials:
        if (self.client_certificate is None) != (self.client_key is None):
            raise ValueError("mTLS needs both client_certificate and client_key")
        return grpc.ssl_channel_credentials(
            root_certificates=_read_pem(self.root_certificates),
            private_key=_read_pem(self.client_key),
            certificate_chain=_read_pem(self.client_certificate),
        )

    def channel_options(self) -> list[tuple[str, Any]]:
        if not self.server_name_override:
            return []
        return [("grpc.ssl_target_name_override", self.server_name_override)]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retries of UNAVAILABLE before anything was received; exponential backoff with jitter."""

    max_attempts: int = 3
    initial_backoff_s: float = 0.2
    max_backoff_s: float = 5.0
    multiplier: float = 2.0

    def backoff_s(self, attempt: int, retry_after_s: float | None = None) -> float:
        """Sleep before retry number `attempt` (1-based); honours the server's retry_after_s hint."""
        ceiling = min(self.max_backoff_s, self.initial_backoff_s * self.multiplier ** (attempt - 1))
        delay = random.uniform(0.5 * ceiling, ceiling)
        if retry_after_s is not None:
            delay = max(delay, min(retry_after_s, self.max_backoff_s))
        return delay

    def retry_delay(self, error: GptossError, attempt: int, deadline: float | None) -> float | None:
        """Seconds to wait before the next attempt, or None to give up (not UNAVAILABLE, out of tries or time)."""
        if error.code != grpc.StatusCode.UNAVAILABLE or attempt >= self.max_attempts:
            return None
        delay = self.backoff_s(attempt, error.retry_after_s)
        if deadline is not None and time.monotonic() + delay >= deadline:
            return None
        return delay


def deadline_after(timeout: float | None) -> float | None:
    """A monotonic deadline, so retries share one per-call time budget."""
    return None if timeout is None else time.monotonic() + timeout


def remaining(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.monotonic())


NO_RETRY = RetryPolicy(max_attempts=1)


class ClientOptions(TypedDict, total=False):
    """Constructor options of `Client` and `AsyncClient` (one definition, so the two cannot differ).

    api_key: sent as `authorization: Bearer KEY`. tls: a TlsConfig, True (system roots) or None.
    timeout: default per-call deadline in seconds (None: none). retry: retries of UNAVAILABLE before
    the first event (NO_RETRY: none). wait_for_ready: queue calls while the channel connects.
    channel_options: extra grpc channel arguments (see gptoss.balancing for load balancing).
    """

    api_key: str | None
    tls: TlsConfig | bool | None
    timeout: float | None
    retry: RetryPolicy | None
    wait_for_ready: bool
    channel_options: Sequence[tuple[str, Any]]


def resolve_tls(tls: TlsConfig | bool | None) -> TlsConfig | None:
    """True means TLS with system roots; False/None means plaintext."""
    if tls is True:
        return TlsConfig()
    if tls is False or tls is None:
        return None
    return tls


def channel_args(tls: TlsConfig | None, options: Sequence[tuple[str, Any]]) -> list[tuple[str, Any]]:
    return [*(tls.channel_options() if tls else []), *options]


def call_metadata(
    api_key: str | None, request_id: str | None, extra: Metadata | None
) -> list[tuple[str, str | bytes]]:
    """Per-call metadata: the API key as a bearer token, and x-request-id for log correlation."""
    metadata: list[tuple[str, str | bytes]] = []
    if api_key:
        metadata.append(("authorization", f"Bearer {api_key}"))
    if request_id:
        metadata.append((REQUEST_ID_METADATA, request_id))
    metadata.extend(extra or ())
    return metadata
