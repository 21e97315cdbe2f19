"""The gateway as `python -m gateway` serves it (gateway._server.uvicorn_config: timeouts, connection cap),
in a thread on a loopback port, plus a raw HTTP/1.1 connection to test what one socket sees."""

from __future__ import annotations

import json
import socket
import tempfile
import threading
import time
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from gateway import GatewaySettings, create_app
from gateway._http_protocol import hardened_protocol
from gateway._server import uvicorn_config


class HardenedGateway:
    """`parser="h11"` runs the protocol over h11, as the gateway image does (no httptools there)."""

    def __init__(self, backends: list[str], parser: str = "auto", **settings: Any) -> None:
        self.parser = "h11" if parser == "h11" else "httptools"
        self._data_dir = tempfile.TemporaryDirectory(prefix="gateway-store-")  # its own SQLite store
        settings.setdefault("data_dir", self._data_dir.name)
        self.settings = GatewaySettings(backends=backends, host="127.0.0.1", port=0, **settings)
        overrides: dict[str, Any] = {"loop": "asyncio", "log_level": "warning"}
        if parser == "h11":
            overrides["http"] = hardened_protocol(
                header_timeout=self.settings.header_timeout,
                body_timeout=self.settings.body_timeout,
                max_header_bytes=self.settings.max_header_bytes,
                base=H11Protocol,
            )
        config = uvicorn_config(create_app(self.settings), self.settings, **overrides)
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, name="hardened-gateway", daemon=True)
        self.port = 0

    def __enter__(self) -> HardenedGateway:
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("gateway did not start")
            time.sleep(0.01)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self._thread.join(15)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def connect(self, timeout: float = 10.0) -> RawConnection:
        return RawConnection(self.port, timeout)


class Reply:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def closes(self) -> bool:
        return self.headers.get("connection", "").lower() == "close"


class RawConnection:
    """One TCP connection speaking just enough HTTP/1.1 (Content-Length bodies) to reuse it on purpose."""

    def __init__(self, port: int, timeout: float) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self._buffer = b""

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> Reply:
        lines = [f"{method} {path} HTTP/1.1", "host: gateway"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        if body is not None:
            lines += ["content-type: application/json", f"content-length: {len(body)}"]
        self.send(("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b""))
        return self.read_reply(head_only=method == "HEAD")

    def read_reply(self, head_only: bool = False) -> Reply:
        while b"\r\n\r\n" not in self._buffer:
            self._fill()
        head, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if not head_only and headers.get("transfer-encoding", "").lower() == "chunked":
            return Reply(int(status_line.split()[1]), headers, self._read_chunked())
        length = 0 if head_only else int(headers.get("content-length", "0"))
        body = self._read_exactly(length)
        return Reply(int(status_line.split()[1]), headers, body)

    def _read_exactly(self, length: int) -> bytes:
        while len(self._buffer) < length:
            self._fill()
        data, self._buffer = self._buffer[:length], self._buffer[length:]
        return data

    def _read_chunked(self) -> bytes:
        body = b""
        while True:
            while b"\r\n" not in self._buffer:
                self._fill()
            size_line, self._buffer = self._buffer.split(b"\r\n", 1)
            size = int(size_line.split(b";")[0], 16)
            chunk = self._read_exactly(size + 2)[:size]
            if size == 0:
                return body
            body += chunk

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        self._buffer += chunk

    def closed_within(self, seconds: float) -> tuple[bool, bytes]:
        """Whether the server closed this connection within `seconds`, and what it sent before."""
        deadline = time.monotonic() + seconds
        received = self._buffer
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                break
            except ConnectionResetError:
                return True, received
            if not chunk:
                return True, received
            received += chunk
        return False, received
