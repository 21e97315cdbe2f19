"""The two generation routes: start a Generate stream (through gptoss.AsyncClient), then answer
whole (the client's fold) or as SSE (the route's stream fold).

A stream waits up to `stream_commit_timeout` for the service's first event before answering,
so what the service refuses up front (bad request, unknown model, overload) is a plain HTTP
error. After that the response is committed: a later failure is an in-band SSE error event
followed by the end of the stream, never a torn response.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from gptoss import AsyncEventStream, Done, Event, GenerateOptions, GptossError
from gptoss.result import ChoicesBuilder, CompletionBuilder

from gateway import _sse, _translate_chat
from gateway._backend import Backend, CallMetadata
from gateway._chat_schema import ChatCompletionRequest
from gateway._chat_stream import ChatStream
from gateway._errors import GatewayError, from_client_error, internal_error, invalid_request
from gateway._finish import NO_DONE
from gateway._metrics import Metrics
from gateway._middleware import CallContext
from gateway._translate_chat import Json
from gateway._translate_common import new_id

log = logging.getLogger("gateway")
RESPONSES_ROUTE = "/v1/responses"


class _Call:
    """One running Generate call: its events, and the read of the first one (maybe still pending)."""

    def __init__(self, events: AsyncEventStream, route: str, metrics: Metrics) -> None:
        self.events = events
        self.first: asyncio.Future[Event | None] | None = asyncio.ensure_future(anext(events, None))
        self._started = time.perf_counter()
        self._route = route
        self._metrics = metrics

    async def next_event(self) -> Event | None:
        """The first event, then the following ones; None at the end of the stream."""
        if self.first is None:
            return await anext(self.events, None)
        first, self.first = self.first, None
        event = await first
        self._metrics.ttft.labels(self._route).observe(time.perf_counter() - self._started)
        return event

    async def close(self) -> None:
        """Cancel the gRPC call if it is still running (client gone, error, or answer complete)."""
        if self.first is not None and not self.first.done():
            self.first.cancel()
            with contextlib.suppress(BaseException):
                await self.first
        await self.events.aclose()


class Generation:
    """Shared by both routes: the backend, metrics and stream settings of one app."""

    def __init__(
        self, backend: Backend, metrics: Metrics, *, keepalive: float, commit_timeout: float
    ) -> None:
        self.backend = backend
        self.metrics = metrics
        self.keepalive = keepalive
        self.commit_timeout = commit_timeout

    def http_error(self, err: GptossError, route: str = "") -> GatewayError:
        """The one place a failed call becomes the caller's HTTP error (and is counted); the route
        picks the API's spelling of the param."""
        self.metrics.backend_errors.labels(err.code.name).inc()
        return from_client_error(err, responses_api=route == RESPONSES_ROUTE)

    async def _start(self, options: GenerateOptions, call: CallContext, route: str, *, stream: bool) -> _Call:
        """Start the call; an error the service reports before `commit_timeout` is raised here."""
        await self.backend.require_started()
        try:
            events = self.backend.generate(options, CallMetadata.of(call.request_id, call.metadata()))
        except UnicodeEncodeError as exc:  # lone surrogates from JSON: protobuf text cannot carry them
            raise invalid_request(
                f"the request contains text that is not valid Unicode: {exc.reason}"
            ) from exc
        except ValueError as exc:  # what the client's request builder refuses
            raise invalid_request(str(exc)) from exc
        running = _Call(events, route, self.metrics)
        first = running.first
        if not stream or first is None:
            return running  # a whole answer reports every error as an HTTP error anyway
        try:
            await asyncio.wait({first}, timeout=self.commit_timeout)
        except BaseException:
            await running.close()
            raise
        error = first.exception() if first.done() and not first.cancelled() else None
        if isinstance(error, GptossError):
            await running.close()
            raise self.http_error(error, route) from None
        return running

    def _count(self, event: Event) -> None:
        if isinstance(event, Done):
            self.metrics.count_usage(event.usage)

    async def _collect(self, request: Request, route: str, running: _Call) -> CompletionBuilder:
        """Fold every event with the client's fold; a client that goes away cancels the call."""
        fold = CompletionBuilder()
        await self._fold(request, route, running, fold.add)
        return fold

    async def _fold(
        self, request: Request, route: str, running: _Call, add: Callable[[Event], object]
    ) -> None:
        """Feed every event to `add`; a client that goes away cancels the call."""

        async def consume() -> None:
            while (event := await running.next_event()) is not None:
                self._count(event)
                add(event)

        try:
            if not await _unless_disconnected(request, consume()):
                self.metrics.disconnects.labels(route).inc()
                raise GatewayError(499, "client closed the request", code="client_closed_request")
        except GptossError as err:
            raise self.http_error(err, route) from None
        finally:
            await running.close()

    def _stream(
        self,
        route: str,
        running: _Call,
        start: list[Json],
        on_event: Callable[[Event], list[Json]],
        *,
        named: bool,
        on_end: Callable[[GatewayError | None], Awaitable[None]] | None = None,
    ) -> Response:
        """SSE: named events and no [DONE] for the Responses API; data-only and [DONE] for chat.

        `on_end` learns how the stream ended (None: completed; the error; a 499 when the client left).
        """

        def encode(data: Json) -> bytes:
            return _sse.encode(data, str(data["type"]) if named else None)

        async def frames() -> AsyncIterator[bytes]:
            ended: GatewayError | None = GatewayError(499, "client closed the request")
            try:
                for data in start:
                    yield encode(data)
                done = False
                while (event := await running.next_event()) is not None:
                    self._count(event)
                    done = done or isinstance(event, Done)
                    for data in on_event(event):
                        yield encode(data)
                if not done:
                    raise GatewayError(502, NO_DONE, type="server_error")
                ended = None
            except Exception as exc:
                error = (
                    self.http_error(exc, route) if isinstance(exc, GptossError) else _as_gateway_error(exc)
                )
                self.metrics.stream_errors.labels(route).inc()
                ended = error
                yield _error_frame(error, named)
                return
            finally:
                await running.close()
                if on_end is not None:
                    await on_end(ended)
            if not named:
                yield _sse.DONE

        return _sse.EventStreamResponse(
            frames(), keepalive=self.keepalive, on_disconnect=self.metrics.disconnects.labels(route).inc
        )

    async def chat(self, request: Request, body: ChatCompletionRequest) -> Response:
        route = "/v1/chat/completions"
        running = await self._start(
            _translate_chat.to_generate_options(body), request.state.call, route, stream=bool(body.stream)
        )
        completion_id, created = new_id("chatcmpl-"), int(time.time())
        if body.stream:
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            chat = ChatStream(
                completion_id=completion_id,
                created=created,
                model=body.model,
                include_usage=include_usage,
                n=body.n or 1,
            )
            return self._stream(route, running, chat.start(), chat.on_event, named=False)
        fold = ChoicesBuilder(body.n or 1)
        await self._fold(request, route, running, fold.add)
        turns = [c.result() if c.done else None for c in fold.choices]
        return JSONResponse(
            _translate_chat.completion(
                turns,
                completion_id=completion_id,
                created=created,
                model=body.model,
                logprobs=bool(body.logprobs),
            )
        )


def _error_frame(error: GatewayError, named: bool) -> bytes:
    payload: Json = dict(error.body())
    if not named:
        return _sse.encode(payload)
    # The Responses API's `error` event; the nested `error` object makes the SDK raise, as for chat.
    event: Json = {
        "type": "error",
        "code": error.code,
        "message": error.message,
        "param": error.param,
        **payload,
    }
    return _sse.encode(event, "error")


def _as_gateway_error(exc: Exception) -> GatewayError:
    if isinstance(exc, GatewayError):
        return exc
    log.exception("unexpected error while streaming")
    return internal_error()


async def _unless_disconnected(request: Request, work: Awaitable[None]) -> bool:
    """Run work unless the client disconnects first (then cancel it and return False)."""

    async def wait_disconnect() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(wait_disconnect())
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        if not task.done():
            task.cancel()
    if not task.done() or task.cancelled():
        await asyncio.gather(task, return_exceptions=True)
        return False
    task.result()
    return True
