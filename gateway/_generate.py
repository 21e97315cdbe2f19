"""The two generation routes: start a Generate stream, then answer whole or as SSE.

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
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from fastapi import Request
from fastapi.responses import JSONResponse, Response

from gateway import _responses_events, _sse, _translate_chat, _translate_responses
from gateway._backend import Backend, read_events
from gateway._chat_schema import ChatCompletionRequest
from gateway._errors import GatewayError, from_grpc, internal_error
from gateway._metrics import Metrics
from gateway._middleware import CallContext
from gateway._responses_schema import ResponsesRequest
from gateway._translate_common import Turn, new_id

log = logging.getLogger("gateway")
Events = AsyncGenerator[Any, None]
Chunks = list[dict[str, Any]]

_NO_EVENTS = "the service ended the stream without a done event"


class _Call:
    """One running Generate call: its events, and the read of the first one (maybe still pending)."""

    def __init__(self, events: Events, route: str, metrics: Metrics) -> None:
        self.events = events
        self.first: asyncio.Future[Any] | None = asyncio.ensure_future(anext(events, None))
        self._started = time.perf_counter()
        self._route = route
        self._metrics = metrics

    async def next_event(self) -> Any:
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

    def _grpc_error(self, err: grpc.aio.AioRpcError) -> GatewayError:
        self.metrics.backend_errors.labels(err.code().name).inc()
        return from_grpc(err)

    async def _start(self, proto: Any, call: CallContext, route: str, *, stream: bool) -> _Call:
        """Start the call; an error the service reports before `commit_timeout` is raised here."""
        running = _Call(read_events(self.backend.generate(proto, call.metadata())), route, self.metrics)
        first = running.first
        if not stream or first is None:
            return running  # a whole answer reports every error as an HTTP error anyway
        try:
            await asyncio.wait({first}, timeout=self.commit_timeout)
        except BaseException:
            await running.close()
            raise
        if first.done() and not first.cancelled() and isinstance(first.exception(), grpc.aio.AioRpcError):
            error = first.exception()
            await running.close()
            raise self._grpc_error(error) from None  # type: ignore[arg-type]
        return running

    def _usage(self, event: Any) -> None:
        if event.WhichOneof("event") == "done":
            self.metrics.count_usage(event.done.usage)

    async def _collect(
        self, request: Request, route: str, running: _Call, sink: Callable[[Any], object]
    ) -> None:
        """Feed every event to sink; a client that goes away cancels the call (non-streaming too)."""

        async def consume() -> None:
            while (event := await running.next_event()) is not None:
                self._usage(event)
                sink(event)

        try:
            if not await _unless_disconnected(request, consume()):
                self.metrics.disconnects.labels(route).inc()
                raise GatewayError(499, "client closed the request", code="client_closed_request")
        except grpc.aio.AioRpcError as err:
            raise self._grpc_error(err) from None
        finally:
            await running.close()

    def _stream(
        self,
        route: str,
        running: _Call,
        start: Chunks,
        on_event: Callable[[Any], Chunks],
        *,
        named_events: bool,
    ) -> Response:
        """SSE: named events and no [DONE] for the Responses API; data-only and [DONE] for chat."""

        def encode(data: dict[str, Any]) -> bytes:
            return _sse.encode(data, data["type"] if named_events else None)

        async def frames() -> AsyncIterator[bytes]:
            try:
                for data in start:
                    yield encode(data)
                done = False
                while (event := await running.next_event()) is not None:
                    self._usage(event)
                    done = done or event.WhichOneof("event") == "done"
                    for data in on_event(event):
                        yield encode(data)
                if not done:
                    raise GatewayError(502, _NO_EVENTS, type="server_error")
            except Exception as exc:
                error = (
                    self._grpc_error(exc) if isinstance(exc, grpc.aio.AioRpcError) else _as_gateway_error(exc)
                )
                self.metrics.stream_errors.labels(route).inc()
                yield _error_frame(error, named_events)
                return
            finally:
                await running.close()
            if not named_events:
                yield _sse.DONE

        return _sse.EventStreamResponse(
            frames(), keepalive=self.keepalive, on_disconnect=self.metrics.disconnects.labels(route).inc
        )

    async def chat(self, request: Request, body: ChatCompletionRequest) -> Response:
        call: CallContext = request.state.call
        proto = _translate_chat.to_generate_request(body, call.request_id)
        running = await self._start(proto, call, "/v1/chat/completions", stream=bool(body.stream))
        completion_id, created = new_id("chatcmpl-"), int(time.time())
        if body.stream:
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            chat = _translate_chat.ChatStream(
                completion_id=completion_id, created=created, model=body.model, include_usage=include_usage
            )
            return self._stream(
                "/v1/chat/completions", running, [chat.start()], chat.on_event, named_events=False
            )
        turn = Turn()
        await self._collect(request, "/v1/chat/completions", running, turn.add)
        return JSONResponse(
            _translate_chat.completion(turn, completion_id=completion_id, created=created, model=body.model)
        )

    async def responses(self, request: Request, body: ResponsesRequest) -> Response:
        call: CallContext = request.state.call
        proto = _translate_responses.to_generate_request(body, call.request_id)
        running = await self._start(proto, call, "/v1/responses", stream=bool(body.stream))
        machine = _responses_events.ResponsesStream(body, new_id("resp_"))
        if body.stream:
            return self._stream(
                "/v1/responses", running, machine.start(), machine.on_event, named_events=True
            )
        await self._collect(request, "/v1/responses", running, machine.on_event)
        if machine.final is None:
            raise GatewayError(502, _NO_EVENTS, type="server_error")
        return JSONResponse(machine.final)


def _error_frame(error: GatewayError, named_events: bool) -> bytes:
    payload: dict[str, Any] = error.body()
    if not named_events:
        return _sse.encode(payload)
    # The Responses API's `error` event; the nested `error` object makes the SDK raise, as for chat.
    event = {"type": "error", "code": error.code, "message": error.message, "param": error.param, **payload}
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
