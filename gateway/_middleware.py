"""A pure ASGI middleware (no BaseHTTPMiddleware: it would break streaming and disconnects) that gives
every request an id, authenticates /v1 calls before any body parsing, and records metrics."""

from __future__ import annotations

import logging
import re
import time
import uuid
from dataclasses import dataclass

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway._auth import ApiKeys
from gateway._errors import GatewayError
from gateway._metrics import Metrics

access_log = logging.getLogger("gateway.access")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")
_KNOWN_ROUTES = ("/v1/chat/completions", "/v1/responses", "/v1/models", "/health", "/ready", "/metrics")


@dataclass(frozen=True)
class CallContext:
    """What a route forwards to the service about its caller (stored in `request.state.call`)."""

    request_id: str
    identity: str | None
    traceparent: str | None
    tracestate: str | None

    def metadata(self) -> tuple[tuple[str, str], ...]:
        md = [("x-request-id", self.request_id)]
        if self.identity is not None:
            md.append(("x-gptoss-caller", self.identity))
        if self.traceparent is not None:
            md.append(("traceparent", self.traceparent))
            if self.tracestate is not None:
                md.append(("tracestate", self.tracestate))
        return tuple(md)


def route_label(path: str) -> str:
    """A bounded label: model ids and unknown paths must not blow up metric cardinality."""
    if path.startswith("/v1/models/"):
        return "/v1/models/{id}"
    return path if path in _KNOWN_ROUTES else "other"


class BodyTooLarge(Exception):
    """Raised from receive() when a body without Content-Length grows past the limit."""


class GatewayMiddleware:
    def __init__(self, app: ASGIApp, *, keys: ApiKeys, metrics: Metrics, max_body_bytes: int) -> None:
        self.app = app
        self.keys = keys
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes

    def _limit(self, headers: Headers, receive: Receive) -> tuple[GatewayError | None, Receive]:
        """Refuse an announced oversize body at once; count the bytes of a chunked one as they come."""
        too_large = GatewayError(
            413, f"The request body is larger than {self.max_body_bytes} bytes.", code="request_too_large"
        )
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > self.max_body_bytes:
            return too_large, receive
        seen = 0

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_body_bytes:
                raise BodyTooLarge(too_large.message)
            return message

        return None, counting_receive

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        given = headers.get("x-request-id", "")
        request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        traceparent = headers.get("traceparent")
        tracestate = headers.get("tracestate")
        route = route_label(scope["path"])
        started = time.perf_counter()
        status = 500
        streaming = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, streaming
            if message["type"] == "http.response.start":
                status = message["status"]
                response_headers = MutableHeaders(scope=message)
                response_headers["x-request-id"] = request_id
                streaming = response_headers.get("content-type", "").startswith("text/event-stream")
            await send(message)

        self.metrics.in_flight.labels(route).inc()
        try:
            try:
                identity = (
                    self.keys.authenticate(headers.get("authorization")) if route.startswith("/v1/") else None
                )
                refused, receive = self._limit(headers, receive)
                if refused is not None:
                    raise refused
            except GatewayError as err:
                response = JSONResponse(err.body(), status_code=err.status, headers=err.headers())
                await response(scope, receive, send_wrapper)
                return
            scope.setdefault("state", {})["call"] = CallContext(
                request_id=request_id,
                identity=identity,
                traceparent=traceparent if traceparent and _TRACEPARENT.match(traceparent) else None,
                tracestate=tracestate
                if tracestate and tracestate.isascii() and len(tracestate) <= 512
                else None,
            )
            await self.app(scope, receive, send_wrapper)
        finally:
            self.metrics.in_flight.labels(route).dec()
            self.metrics.requests.labels(route, str(status)).inc()
            elapsed = time.perf_counter() - started
            self.metrics.duration.labels(route, str(streaming).lower()).observe(elapsed)
            # One structured access line per request: ids and numbers, never bodies (no prompt text).
            access_log.info(
                "request",
                extra={
                    "request_id": request_id,
                    "method": scope.get("method", ""),
                    "route": route,
                    "status": status,
                    "streaming": streaming,
                    "duration_ms": round(elapsed * 1000, 2),
                },
            )
