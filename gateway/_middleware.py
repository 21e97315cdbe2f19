"""A pure ASGI middleware (no BaseHTTPMiddleware: it would break streaming and disconnects) that gives
every request an id, authenticates /v1 calls (and the API docs) before any body parsing, caps the
body, answers HEAD like GET without a body (probes use HEAD), and records metrics."""

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
# Served only with the `docs` setting; behind the API keys like /v1 (the schema maps the surface).
DOCS_PATHS = ("/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json")


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
    if path.startswith("/v1/responses/"):
        return "/v1/responses/{id}"
    if path.startswith("/v1/conversations"):
        return "/v1/conversations"
    return path if path in _KNOWN_ROUTES else "other"


class _BodyLimit:
    """Counts the bytes of a body without Content-Length (chunked) as they come.

    Past the limit it answers 413 itself (closing the connection: the rest of the body is never
    read) and tells the app the client is gone, so whatever the app was parsing ends there and
    cannot turn the overflow into another status (FastAPI made it a 400); the app's own answer
    is then dropped.
    """

    def __init__(self, limit: int, error: GatewayError, receive: Receive, send: Send, scope: Scope) -> None:
        self.limit = limit
        self.error = error
        self._receive = receive
        self._send = send
        self._scope = scope
        self.seen = 0
        self.answered = False

    async def receive(self) -> Message:
        if self.answered:
            return {"type": "http.disconnect"}
        message = await self._receive()
        self.seen += len(message.get("body", b""))
        if self.seen > self.limit:
            headers = {"connection": "close", **self.error.headers()}
            response = JSONResponse(self.error.body(), status_code=self.error.status, headers=headers)
            await response(self._scope, self._receive, self._send)
            self.answered = True
            return {"type": "http.disconnect"}
        return message


class GatewayMiddleware:
    def __init__(self, app: ASGIApp, *, keys: ApiKeys, metrics: Metrics, max_body_bytes: int) -> None:
        self.app = app
        self.keys = keys
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes

    def _too_large(self) -> GatewayError:
        return GatewayError(
            413, f"The request body is larger than {self.max_body_bytes} bytes.", code="request_too_large"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope.get("method", "")
        if method == "HEAD":
            # FastAPI routes GET only; uvicorn sends no body for HEAD (the scope it holds says HEAD).
            scope = {**scope, "method": "GET"}
            send = _without_body(send)
        headers = Headers(scope=scope)
        given = headers.get("x-request-id", "")
        request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        traceparent = headers.get("traceparent")
        tracestate = headers.get("tracestate")
        route = route_label(scope["path"])
        started = time.perf_counter()
        status = 500
        streaming = False

        body_limit: _BodyLimit | None = None

        async def send_wrapper(message: Message) -> None:
            nonlocal status, streaming
            if body_limit is not None and body_limit.answered:
                return  # the body limit answered 413; the app's answer is dropped
            if message["type"] == "http.response.start":
                status = message["status"]
                response_headers = MutableHeaders(scope=message)
                response_headers["x-request-id"] = request_id
                streaming = response_headers.get("content-type", "").startswith("text/event-stream")
            await send(message)

        self.metrics.in_flight.labels(route).inc()
        try:
            try:
                guarded = route.startswith("/v1/") or scope["path"] in DOCS_PATHS
                identity = self.keys.authenticate(headers.get("authorization")) if guarded else None
                length = headers.get("content-length", "")
                if length.isdigit() and int(length) > self.max_body_bytes:
                    raise self._too_large()
                if not length:
                    body_limit = _BodyLimit(
                        self.max_body_bytes, self._too_large(), receive, send_wrapper, scope
                    )
                    receive = body_limit.receive
            except GatewayError as err:
                # An unread body (413) would be read as the next request: close the connection then.
                close = {"connection": "close"} if err.status == 413 else {}
                response = JSONResponse(
                    err.body(), status_code=err.status, headers={**close, **err.headers()}
                )
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
                    "method": method,
                    "route": route,
                    "status": status,
                    "streaming": streaming,
                    "duration_ms": round(elapsed * 1000, 2),
                },
            )


def _without_body(send: Send) -> Send:
    """HEAD: the headers of the GET answer, the body bytes dropped (Content-Length kept, as RFC 9110 allows)."""

    async def head_send(message: Message) -> None:
        if message["type"] == "http.response.body":
            if message.get("more_body", False):
                return
            message = {"type": "http.response.body", "body": b"", "more_body": False}
        await send(message)

    return head_send
