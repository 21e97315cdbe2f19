"""Malformed request bytes become INVALID_ARGUMENT, with one rate-limited warning line.

grpc.aio would answer a body that fails to parse with UNKNOWN (naming a Python class) and log a
traceback per request: an unauthenticated log flood. This interceptor takes each unary request
as bytes and parses it itself.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from service.auth import Handler
from service.errors import abort, invalid_argument

log = logging.getLogger(__name__)
Context = grpc.aio.ServicerContext[Any, Any]


class RateLimitedLog:
    """At most one line per `every_s` seconds; the next line says how many were left out."""

    def __init__(self, logger: logging.Logger, every_s: float = 10.0) -> None:
        self._log = logger
        self._every_s = every_s
        self._last = -float("inf")
        self.suppressed = 0

    def warning(self, message: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._last < self._every_s:
            self.suppressed += 1
            return
        if self.suppressed:
            message += f" ({self.suppressed} more like it not logged in the last {self._every_s:g}s)"
        self._log.warning(message, *args)
        self._last, self.suppressed = now, 0


_MALFORMED = RateLimitedLog(log)
GUARDED_PREFIX = "/gptoss.v1."


class MalformedRequestGuard(grpc.aio.ServerInterceptor):
    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        # Our own RPCs only: their streaming handlers are async generators, which _guarded wraps.
        if not handler_call_details.method.startswith(GUARDED_PREFIX):
            return handler
        if handler is None or handler.request_streaming or handler.request_deserializer is None:
            return handler
        return _guarded(handler, handler_call_details.method)


def _guarded(handler: Handler, method: str) -> Handler:
    parse: Callable[[bytes], Any] = handler.request_deserializer  # type: ignore[assignment]

    async def parsed(raw: bytes, context: Context) -> Any:
        try:
            return parse(raw)
        except (DecodeError, ValueError, RecursionError) as exc:
            _MALFORMED.warning("malformed request to %s from %s: %s", method, context.peer(), exc)
            await abort(context, invalid_argument(f"the request is not a valid message for {method}"))

    if handler.response_streaming:
        stream: Callable[[Any, Context], AsyncIterator[Any]] = handler.unary_stream  # type: ignore[assignment]

        async def unary_stream(raw: bytes, context: Context) -> AsyncIterator[Any]:
            request = await parsed(raw, context)
            async for response in stream(request, context):
                yield response

        return grpc.unary_stream_rpc_method_handler(
            unary_stream, response_serializer=handler.response_serializer
        )
    unary: Callable[[Any, Context], Awaitable[Any]] = handler.unary_unary  # type: ignore[assignment]

    async def unary_unary(raw: bytes, context: Context) -> Any:
        return await unary(await parsed(raw, context), context)

    return grpc.unary_unary_rpc_method_handler(unary_unary, response_serializer=handler.response_serializer)
