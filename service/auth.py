"""API keys on gRPC metadata (`authorization: Bearer KEY`) and the caller each request counts against.

Keys are compared as SHA-256 digests in constant time (equal lengths, every key tried), as the
gateway does. Only a gateway key (`trusted_gateway_keys`) may name the caller through
`x-gptoss-caller`: anyone else could otherwise pick a new name per request and escape the
per-caller share. Health and reflection stay open so probes and grpcurl/buf curl discovery work.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeAlias

import grpc
from gptoss.contract import CALLER_METADATA, STATUS_DETAILS_KEY
from gptoss.limits import MAX_CALLER_LENGTH, PRINTABLE_ASCII_PATTERN

from service.errors import unauthenticated

Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
Metadata: TypeAlias = "grpc.aio.Metadata | Sequence[tuple[str, str | bytes]] | None"
OPEN_SERVICES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.",
)
_PRINTABLE = re.compile(PRINTABLE_ASCII_PATTERN)


def key_identity(key: str) -> str:
    """A stable, non-secret name for a key (the gateway's `key_identity` format)."""
    return "key-" + hashlib.sha256(key.encode()).hexdigest()[:12]


def bearer_token(metadata: Metadata) -> str:
    """The token of `authorization: Bearer TOKEN`; the scheme is case-insensitive."""
    for name, value in metadata or ():
        if name.lower() == "authorization" and isinstance(value, str):
            scheme, _, token = value.strip().partition(" ")
            if scheme.lower() == "bearer":
                return token.strip()
    return ""


class ApiKeys:
    """The accepted keys, as digests; `gateway` marks the keys whose caller names are trusted."""

    def __init__(self, keys: Sequence[str], gateway_keys: Sequence[str] = ()) -> None:
        gateway = {hashlib.sha256(k.encode()).digest() for k in gateway_keys}
        digests = {hashlib.sha256(k.encode()).digest(): key_identity(k) for k in [*keys, *gateway_keys] if k}
        self._keys = [(digest, name, digest in gateway) for digest, name in digests.items()]

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def match(self, token: str) -> tuple[str, bool] | None:
        """(identity, is a gateway key) of the matching key, or None; time does not depend on which."""
        digest = hashlib.sha256(token.encode()).digest()
        found = None
        for key_digest, name, gateway in self._keys:
            if hmac.compare_digest(digest, key_digest):
                found = (name, gateway)
        return found

    def caller(self, metadata: Metadata, peer: str) -> str:
        """Whom a request counts against: the gateway-named caller, else the key, else the peer host."""
        matched = self.match(bearer_token(metadata)) if self._keys else None
        if matched is not None:
            name, gateway = matched
            named = _metadata(metadata, CALLER_METADATA) if gateway else ""
            return named or name
        return "peer-" + peer_host(peer)


def peer_host(peer: str) -> str:
    """`ipv4:10.0.0.1:5000` -> `10.0.0.1`: every connection of a host is one caller."""
    kind, _, address = peer.partition(":")
    if kind in ("ipv4", "ipv6"):
        host, _, _port = address.rpartition(":")
        return host.strip("[]") or address
    return peer


def _metadata(metadata: Metadata, key: str) -> str:
    for name, value in metadata or ():
        if name == key and isinstance(value, str):
            if len(value) <= MAX_CALLER_LENGTH and _PRINTABLE.match(value):
                return value
    return ""


class ApiKeyInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, keys: ApiKeys) -> None:
        self._keys = keys

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        method = handler_call_details.method
        if method.startswith(OPEN_SERVICES):
            return await continuation(handler_call_details)
        if self._keys.match(bearer_token(handler_call_details.invocation_metadata)) is not None:
            return await continuation(handler_call_details)
        handler = await continuation(handler_call_details)
        return _rejecting(handler)


def _rejecting(handler: Handler | None) -> Handler:
    error = unauthenticated()
    trailing = ((STATUS_DETAILS_KEY, error.details()),)

    async def reject_unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        await context.abort(error.code, error.message, trailing_metadata=trailing)

    async def reject_stream(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        await context.abort(error.code, error.message, trailing_metadata=trailing)
        yield  # pragma: no cover - makes this an async generator

    # The request is never read: take it as bytes, so a malformed body is refused for its key.
    serializer = handler.response_serializer if handler else None
    if handler is not None and handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(reject_stream, response_serializer=serializer)
    return grpc.unary_unary_rpc_method_handler(reject_unary, response_serializer=serializer)
