"""Blocking client: a thin facade over `AsyncClient`, run on a private event loop thread.

Every request, retry, deadline, metadata and error rule lives in `gptoss.aio`; this module only
moves calls and events across the thread boundary, so the two clients cannot drift apart
(tests/clients/test_client_surface.py proves their public surfaces match).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import Any, Unpack

from gptoss._loop import LoopThread
from gptoss.aio import AsyncClient, AsyncEventStream
from gptoss.calls import CallOptions, CountTokensCall, GenerateCall
from gptoss.connection import DEFAULT_TARGET, ClientOptions
from gptoss.contract import READINESS_SERVICE
from gptoss.events import Event
from gptoss.info import ModelInfo, ServingStatus, TokenCount
from gptoss.result import Completion


class EventStream(Iterator[Event]):
    """The events of one Generate call. Closing it (or leaving its `with` block) cancels the RPC."""

    def __init__(self, stream: AsyncEventStream, loop: LoopThread) -> None:
        self._stream = stream
        self._loop = loop
        self._reading: asyncio.Task[Any] | None = None
        self.request_id = stream.request_id

    def __iter__(self) -> EventStream:
        return self

    def __next__(self) -> Event:
        event = self._loop.run(self._next())
        if event is None:
            raise StopIteration
        return event

    async def _next(self) -> Event | None:
        """The next event, None at the end (StopAsyncIteration must not cross the thread boundary)."""
        self._reading = asyncio.current_task()
        try:
            return await anext(self._stream)
        except StopAsyncIteration:
            return None

    def close(self) -> None:
        """Stop reading; cancels the call on the server if it is still running."""
        self._loop.run(self._aclose())

    async def _aclose(self) -> None:
        reading = self._reading
        if reading is not None and not reading.done():  # a read interrupted by Ctrl-C: let it unwind
            reading.cancel()
            await asyncio.wait([reading])
        await self._stream.aclose()

    def cancel(self) -> None:
        """Cancel from any thread (e.g. a watchdog) while another thread reads; the reader's loop ends."""
        self._loop.call_soon(self._stream.cancel)

    def collect(self) -> Completion:
        """Read the rest of the stream into one Completion."""
        return self._loop.run(self._stream.collect())

    def __enter__(self) -> EventStream:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


async def _open(target: str, options: ClientOptions) -> AsyncClient:
    return AsyncClient(target, **options)  # inside the loop: a grpc.aio channel binds to it


class Client:
    """Blocking client for gptoss.v1.InferenceService: AsyncClient's methods, without `await`.

    Options: see `gptoss.connection.ClientOptions`. Safe to share between threads.
    """

    def __init__(self, target: str = DEFAULT_TARGET, **options: Unpack[ClientOptions]) -> None:
        self.target = target
        self._loop = LoopThread()
        try:
            self._async = self._loop.run(_open(target, options))
        except BaseException:
            self._loop.stop()
            raise

    def close(self) -> None:
        """Close the channel and stop the client's loop thread (idempotent)."""
        if not self._loop.loop.is_closed():
            self._loop.run(self._async.close())
            self._loop.stop()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def generate(self, request: Any | None = None, /, **options: Unpack[GenerateCall]) -> EventStream:
        """Stream one assistant turn. Pass a GenerateRequest or keyword options (messages=..., ...)."""
        return EventStream(self._async.generate(request, **options), self._loop)

    def complete(self, request: Any | None = None, /, **options: Unpack[GenerateCall]) -> Completion:
        """Generate and collect the whole turn (reasoning, content, tool calls, usage, timings)."""
        return self._loop.run(self._async.complete(request, **options))

    def model_info(self, **options: Unpack[CallOptions]) -> ModelInfo:
        """The served model and its limits."""
        return self._loop.run(self._async.model_info(**options))

    def count_tokens(self, request: Any | None = None, /, **options: Unpack[CountTokensCall]) -> TokenCount:
        """The Harmony-rendered prompt length of a conversation (or of a GenerateRequest)."""
        return self._loop.run(self._async.count_tokens(request, **options))

    def tokenize(self, text: str, *, model: str = "", **options: Unpack[CallOptions]) -> list[int]:
        """Token ids of `text` in the served model's encoding (special-token text encodes as such)."""
        return self._loop.run(self._async.tokenize(text, model=model, **options))

    def detokenize(self, token_ids: Sequence[int], *, model: str = "", **options: Unpack[CallOptions]) -> str:
        """The text of token ids (invalid UTF-8 shows as U+FFFD)."""
        return self._loop.run(self._async.detokenize(token_ids, model=model, **options))

    def health(self, service: str = READINESS_SERVICE, *, timeout: float | None = None) -> ServingStatus:
        """grpc.health.v1 status: "" is liveness, READINESS_SERVICE is readiness (engine loaded)."""
        return self._loop.run(self._async.health(service, timeout=timeout))

    def wait_until_ready(
        self, timeout: float = 120.0, *, service: str = READINESS_SERVICE, poll_s: float = 0.5
    ) -> None:
        """Block until `service` is SERVING; UnavailableError when `timeout` runs out first."""
        self._loop.run(self._async.wait_until_ready(timeout, service=service, poll_s=poll_s))
