"""API keys on gRPC metadata (`authorization: Bearer KEY`), compared in constant time.

Health and reflection stay open so probes and grpcurl/buf curl discovery work without keys.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeAlias

import grpc

from service.errors import STATUS_DETAILS_KEY, unauthenticated

Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
OPEN_SERVICES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.",
)


def key_matches(presented: str, keys: Sequence[str]) -> bool:
    """Constant-time against every key, so timing reveals neither which key nor how much matched."""
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(presented.encode(), key.encode())
    return matched


def bearer_token(metadata: Sequence[tuple[str, str | bytes]] | None) -> str:
    for name, value in metadata or ():
        if name.lower() == "authorization" and isinstance(value, str) and value.startswith("Bearer "):
            return value[len("Bearer ") :].strip()
    return ""


class ApiKeyInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, keys: Sequence[str]) -> None:
        self._keys = list(keys)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        method = handler_call_details.method
        if method.startswith(OPEN_SERVICES):
            return await continuation(handler_call_details)
        if key_matches(bearer_token(handler_call_details.invocation_metadata), self._keys):
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

    deserializer = handler.request_deserializer if handler else None
    serializer = handler.response_serializer if handler else None
    if handler is not None and handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(
            reject_stream, request_deserializer=deserializer, response_serializer=serializer
        )
    return grpc.unary_unary_rpc_method_handler(
        reject_unary, request_deserializer=deserializer, response_serializer=serializer
    )
