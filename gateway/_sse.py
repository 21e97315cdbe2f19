"""Server-sent events: encoding, and a response that stops its producer the moment the client leaves."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Mapping

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

DONE = b"data: [DONE]\n\n"
KEEPALIVE = b": keep-alive\n\n"


def encode(data: Mapping[str, object], event: str | None = None) -> bytes:
    """One SSE frame; compact JSON keeps chunks small (every token is one frame)."""
    payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()


class EventStreamResponse(Response):
    """A text/event-stream response over an async iterator of frames.

    Unlike Starlette's StreamingResponse it always watches for `http.disconnect` (whatever ASGI
    spec version the server speaks) and cancels the producer at once, so an abandoned request
    stops the gRPC call and the engine request instead of generating into the void. While the
    producer is silent for `keepalive` seconds (queueing, long prefill) it sends SSE comments,
    which keep proxies from timing the connection out.
    """

    media_type = "text/event-stream"

    def __init__(
        self,
        frames: AsyncIterator[bytes],
        *,
        headers: dict[str, str] | None = None,
        keepalive: float = 15.0,
        on_disconnect: Callable[[], None] | None = None,
    ) -> None:
        # No Response.__init__: it would set Content-Length for the (absent) body.
        self.status_code = 200
        self.background = None
        self.init_headers({"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **(headers or {})})
        self._frames = frames
        self._keepalive = keepalive
        self._on_disconnect = on_disconnect

    async def _produce(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        frames = aiter(self._frames)
        next_frame: asyncio.Task[bytes] | None = None
        try:
            while True:
                if next_frame is None:
                    next_frame = asyncio.ensure_future(anext(frames))
                done, _ = await asyncio.wait({next_frame}, timeout=self._keepalive)
                if not done:
                    await send({"type": "http.response.body", "body": KEEPALIVE, "more_body": True})
                    continue
                try:
                    frame = next_frame.result()
                except StopAsyncIteration:
                    break
                finally:
                    next_frame = None
                await send({"type": "http.response.body", "body": frame, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            if next_frame is not None:
                next_frame.cancel()
                with contextlib.suppress(BaseException):
                    await next_frame
            aclose = getattr(frames, "aclose", None)
            if aclose is not None:
                await aclose()

    async def _wait_disconnect(self, receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        produce = asyncio.ensure_future(self._produce(send))
        watch = asyncio.ensure_future(self._wait_disconnect(receive))
        try:
            done, _ = await asyncio.wait({produce, watch}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            produce.cancel()
            watch.cancel()
            await asyncio.gather(produce, watch, return_exceptions=True)
        if produce not in done:
            if self._on_disconnect is not None:
                self._on_disconnect()
            return
        error = produce.exception()
        if error is not None and not isinstance(error, OSError):
            raise error
