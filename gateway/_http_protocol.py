"""uvicorn's HTTP protocol with the read deadlines it lacks: a slow client cannot hold a socket.

uvicorn has a keep-alive timeout but none while a request's head or body is arriving, so a
client sending a byte every few seconds (slowloris), a bare `GET /` with no version (HTTP/0.9)
or a socket that never sends anything is held forever. This subclass of whichever protocol
uvicorn would pick (httptools or h11) arms one timer per phase:

- head: from the connection's first moment (or a kept-alive request's first byte) until the
  headers are complete; also caps the head's size (431 above `max_header_bytes`) and refuses
  a request line without a version (HTTP/0.9, 400) at once;
- body: the longest silence while the body is arriving.

On expiry it answers 408 (431, 400) with an OpenAI-style error body when no response has started,
and closes the connection. Only `connection_made`, `data_received` and `connection_lost` are
overridden, and only the `cycle` attribute both uvicorn implementations share is read.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from uvicorn.protocols.http.auto import AutoHTTPProtocol

Protocol = Any  # uvicorn's protocol classes are not typed as a common base


def _error(status: int, reason: str, message: str, code: str) -> bytes:
    body = json.dumps(
        {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}}
    ).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


def _head_size(cycle: Any) -> int:
    """The parsed head's size: request target plus header lines (as a parser saw them)."""
    scope = getattr(cycle, "scope", {})
    target = len(scope.get("raw_path", b"")) + len(scope.get("query_string", b""))
    return target + sum(len(name) + len(value) + 4 for name, value in scope.get("headers", ()))


class _Deadlines:
    """The per-connection state: which phase is timed, its timer, and the head's size so far."""

    def __init__(self) -> None:
        self.timer: asyncio.TimerHandle | None = None
        self.cycle: object | None = None  # the request whose headers were seen last
        self.head_bytes = 0
        self.in_body = False
        self.request_line = b""  # until its end is seen: an HTTP/0.9 line has no version
        self.line_checked = False

    def new_head(self) -> None:
        self.head_bytes = 0
        self.request_line = b""
        self.line_checked = False

    def versionless(self, data: bytes) -> bool:
        """True once the request line is complete and names no HTTP/1.x version (HTTP/0.9)."""
        if self.line_checked:
            return False
        self.request_line = (self.request_line + data).lstrip(b"\r\n")[:8192]
        end = self.request_line.find(b"\n")
        if end < 0:
            return False
        self.line_checked = True
        return not self.request_line[:end].rstrip().rsplit(b" ", 1)[-1].startswith(b"HTTP/")

    def cancel(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


def hardened_protocol(
    *, header_timeout: float, body_timeout: float, max_header_bytes: int, base: type[Any] = AutoHTTPProtocol
) -> type[Any]:
    """A protocol class for `uvicorn.Config(http=...)` with these limits."""

    class HardenedHTTPProtocol(base):  # type: ignore[misc]
        def connection_made(self, transport: asyncio.Transport) -> None:
            self._deadlines = _Deadlines()
            super().connection_made(transport)
            self._arm(header_timeout, self._head_expired)

        def connection_lost(self, exc: Exception | None) -> None:
            self._deadlines.cancel()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            deadlines = self._deadlines
            cycle = getattr(self, "cycle", None)
            between_requests = cycle is None or getattr(cycle, "response_complete", False)
            if cycle is deadlines.cycle and between_requests and not deadlines.in_body:
                # Bytes of a new head (or of the first one): time and size them.
                if deadlines.timer is None:
                    self._arm(header_timeout, self._head_expired)
                if deadlines.versionless(data):
                    self._refuse(400, "Bad Request", "HTTP/0.9 requests are not supported.")
                    return
                deadlines.head_bytes += len(data)
            super().data_received(data)
            self._after_data()

        def _after_data(self) -> None:
            deadlines = self._deadlines
            cycle = getattr(self, "cycle", None)
            if cycle is not None and cycle is not deadlines.cycle:
                deadlines.cycle = cycle  # headers complete: a new request started
                deadlines.new_head()
                deadlines.cancel()
                deadlines.in_body = bool(getattr(cycle, "more_body", False))
                if _head_size(cycle) > max_header_bytes:
                    self._refuse(431, "Request Header Fields Too Large", "The request head is too large.")
                    return
            elif cycle is deadlines.cycle and deadlines.head_bytes > max_header_bytes:
                # Still no end of the head after that many bytes (bodies are not counted here).
                self._refuse(431, "Request Header Fields Too Large", "The request head is too large.")
                return
            if deadlines.in_body:
                if cycle is None or not getattr(cycle, "more_body", False):
                    deadlines.in_body = False
                    deadlines.cancel()
                else:
                    self._arm(body_timeout, self._body_expired)  # progress: restart the silence timer

        def _arm(self, delay: float, callback: Any) -> None:
            self._deadlines.cancel()
            self._deadlines.timer = asyncio.get_running_loop().call_later(delay, callback)

        def _head_expired(self) -> None:
            self._deadlines.timer = None
            cycle = getattr(self, "cycle", None)
            if cycle is not None and not getattr(cycle, "response_complete", False):
                return  # a request is being served: not a head phase any more
            self._refuse(408, "Request Timeout", "The request headers did not arrive in time.")

        def _body_expired(self) -> None:
            self._deadlines.timer = None
            if getattr(getattr(self, "flow", None), "read_paused", False):
                # We stopped reading (the app is behind on the body): not the client's silence.
                self._arm(body_timeout, self._body_expired)
                return
            self._refuse(408, "Request Timeout", "The request body did not arrive in time.")

        def _refuse(self, status: int, reason: str, message: str) -> None:
            """Answer (if nothing was answered yet) and close; the app sees a disconnect."""
            self._deadlines.cancel()
            transport: asyncio.Transport = self.transport
            if transport.is_closing():
                return
            cycle = getattr(self, "cycle", None)
            serving = cycle is not None and not getattr(cycle, "response_complete", False)
            if not (serving and getattr(cycle, "response_started", False)):
                code = {408: "request_timeout", 431: "request_header_too_large"}.get(status, "bad_request")
                transport.write(_error(status, reason, message, code))
            if serving:
                cycle.disconnected = True  # type: ignore[union-attr]  # later app writes are dropped
                cycle.message_event.set()  # type: ignore[union-attr]  # the app's receive() returns
            transport.close()

    return HardenedHTTPProtocol
