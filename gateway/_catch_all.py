"""The last line of defence: an unexpected exception becomes an OpenAI-shaped 500, never a dropped socket.

Starlette sends an `Exception` handler's answer from its outermost ServerErrorMiddleware (outside
the gateway middleware, so without `x-request-id`) and then re-raises, which makes the server close
the keep-alive connection: the caller's NEXT request on it failed too. This middleware sits inside
the gateway middleware, answers the 500 itself and swallows the error once the answer is sent.
"""

from __future__ import annotations

import logging

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway._errors import internal_error

log = logging.getLogger("gateway")


class CatchAllMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            log.exception("unhandled error", exc_info=exc)
            if started:
                raise  # a torn response cannot be mended; the server closes the connection
            err = internal_error()
            await JSONResponse(err.body(), status_code=err.status)(scope, receive, send)
