"""The one client implementation (grpc.aio); `gptoss.Client` is a blocking facade over it.

Typed events, per-call deadlines and metadata, retries of UNAVAILABLE only before the first event
(after it, a retry could repeat output the caller already used), and cancellation that reaches
the server: aclose(), cancel(), or cancelling the task that reads.
"""
# ruff: noqa: ASYNC109  -- `timeout` is the gRPC deadline, passed to the call like grpc.aio does.

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from types import TracebackType
from typing import Any, TypeVar, Unpack

import grpc
import grpc.aio
from grpc_health.v1 import health_pb2_grpc

from gptoss.build import resolve_count_tokens_request, resolve_generate_request
from gptoss.calls import CallOptions, CountTokensCall, GenerateCall
from gptoss.connection import (
    DEFAULT_TARGET,
    ClientOptions,
    Metadata,
    RetryPolicy,
    call_metadata,
    channel_args,
    deadline_after,
    remaining,
    resolve_tls,
)
from gptoss.contract import READINESS_SERVICE
from gptoss.errors import GptossError, UnavailableError, from_rpc_error
from gptoss.events import Event, event_from_proto
from gptoss.info import ModelInfo, ServingStatus, TokenCount, health_request
from gptoss.result import Completion, CompletionBuilder
from gptoss.v1 import inference_pb2 as pb
from gptoss.v1 import inference_pb2_grpc as pb_grpc

T = TypeVar("T")


def _task_cancelling() -> bool:
    """Whether the current task itself is being cancelled (vs. only the gRPC call)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


class _CallSlot:
    """The stream's in-flight call, so `cancel()` works while another task awaits the next event."""

    def __init__(self) -> None:
        self.call: Any = None
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True
        if self.call is not None:
            self.call.cancel()


class AsyncEventStream(AsyncIterator[Event]):
    """The events of one Generate call. `aclose()` (or leaving `async with`) cancels the RPC."""

    def __init__(self, events: AsyncGenerator[Event, None], request_id: str, slot: _CallSlot) -> None:
        self._events = events
        self._slot = slot
        self.request_id = request_id

    def __aiter__(self) -> AsyncEventStream:
        return self

    async def __anext__(self) -> Event:
        return await anext(self._events)

    async def aclose(self) -> None:
        """Stop reading; cancels the call on the server if it is still running."""
        await self._events.aclose()

    def cancel(self) -> None:
        """Cancel while another task awaits the next event (same event loop); its loop ends quietly."""
        self._slot.cancel()

    async def collect(self) -> Completion:
        """Read the rest of the stream into one Completion."""
        builder = CompletionBuilder()
        async with self:
            async for event in self:
                builder.add(event)
        return builder.result()

    async def __aenter__(self) -> AsyncEventStream:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


class AsyncClient:
    """asyncio client for gptoss.v1.InferenceService; options: see `gptoss.connection.ClientOptions`.

    Pass `channel` to use a channel you built (it is not closed by `close()`); otherwise one is made
    from `target`, `tls` and `channel_options`. Create the client inside the event loop that uses it
    (grpc.aio channels are bound to one loop).
    """

    def __init__(
        self,
        target: str = DEFAULT_TARGET,
        *,
        channel: grpc.aio.Channel | None = None,
        **options: Unpack[ClientOptions],
    ) -> None:
        tls_config = resolve_tls(options.get("tls"))
        self.target = target
        self._api_key = options.get("api_key")
        self._timeout = options.get("timeout")
        self._retry = options.get("retry") or RetryPolicy()
        self._wait_for_ready = options.get("wait_for_ready", False)
        self._owns_channel = channel is None
        if channel is None:
            args = channel_args(tls_config, options.get("channel_options", ()))
            if tls_config is not None:
                channel = grpc.aio.secure_channel(target, tls_config.credentials(), options=args)
            else:
                channel = grpc.aio.insecure_channel(target, options=args)
        self._channel = channel
        self._stub = pb_grpc.InferenceServiceStub(channel)
        self._health = health_pb2_grpc.HealthStub(channel)

    async def close(self) -> None:
        """Close the channel this client made (a channel passed in stays open)."""
        if self._owns_channel:
            await self._channel.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # -- Generate ---------------------------------------------------------------------------------

    def generate(self, request: Any | None = None, /, **options: Unpack[GenerateCall]) -> AsyncEventStream:
        """Stream one assistant turn: `async for event in client.generate(messages=[...])`.

        Pass a ready GenerateRequest, or keyword options (messages=..., max_tokens=...); plus
        timeout, request_id and metadata for the call.
        """
        timeout = options.pop("timeout", None)
        metadata = options.pop("metadata", None)
        proto = resolve_generate_request(request, options.pop("request_id", None), options)
        rid = proto.request_id
        md = call_metadata(self._api_key, rid, metadata)
        slot = _CallSlot()
        return AsyncEventStream(self._events(proto, self._timeout_for(timeout), md, rid, slot), rid, slot)

    async def complete(self, request: Any | None = None, /, **options: Unpack[GenerateCall]) -> Completion:
        """Generate and collect the whole turn (reasoning, content, tool calls, usage, timings)."""
        return await self.generate(request, **options).collect()

    async def _events(
        self, request: Any, timeout: float | None, metadata: Metadata, request_id: str, slot: _CallSlot
    ) -> AsyncGenerator[Event, None]:
        deadline = deadline_after(timeout)
        attempt = 0
        while not slot.cancelled:
            attempt += 1
            call = self._stub.Generate(
                request, timeout=remaining(deadline), metadata=metadata, wait_for_ready=self._wait_for_ready
            )
            slot.call = call
            received = False
            try:
                async for response in call:
                    received = True
                    event = event_from_proto(response)
                    if event is not None:
                        yield event
                return
            except asyncio.CancelledError:
                if slot.cancelled and not _task_cancelling():
                    return  # our own cancel(): end the stream quietly
                raise  # the consuming task was cancelled: propagate (finally cancels the call)
            except grpc.RpcError as exc:
                if slot.cancelled:
                    return
                error = from_rpc_error(exc, request_id=request_id or None)
                delay = None if received else self._retry.retry_delay(error, attempt, deadline)
                if delay is None:
                    raise error from exc
            finally:
                # No-op after a normal end; on aclose() / an exception it cancels the server's work.
                call.cancel()
            await asyncio.sleep(delay)

    # -- unary calls -------------------------------------------------------------------------------

    async def model_info(self, **options: Unpack[CallOptions]) -> ModelInfo:
        """The served model and its limits."""
        response = await self._unary(self._stub.GetModelInfo, pb.GetModelInfoRequest(), options)
        return ModelInfo.from_proto(response)

    async def count_tokens(
        self, request: Any | None = None, /, **options: Unpack[CountTokensCall]
    ) -> TokenCount:
        """The Harmony-rendered prompt length of a conversation (or of a GenerateRequest)."""
        call = CallOptions(timeout=options.pop("timeout", None), metadata=options.pop("metadata", None))
        proto = resolve_count_tokens_request(request, options)
        return TokenCount.from_proto(await self._unary(self._stub.CountTokens, proto, call))

    async def tokenize(self, text: str, *, model: str = "", **options: Unpack[CallOptions]) -> list[int]:
        """Token ids of `text` in the served model's encoding (special-token text encodes as such)."""
        request = pb.TokenizeRequest(text=text, model=model)
        return list((await self._unary(self._stub.Tokenize, request, options)).token_ids)

    async def detokenize(
        self, token_ids: Sequence[int], *, model: str = "", **options: Unpack[CallOptions]
    ) -> str:
        """The text of token ids (invalid UTF-8 shows as U+FFFD)."""
        request = pb.DetokenizeRequest(token_ids=list(token_ids), model=model)
        return str((await self._unary(self._stub.Detokenize, request, options)).text)

    async def health(
        self, service: str = READINESS_SERVICE, *, timeout: float | None = None
    ) -> ServingStatus:
        """grpc.health.v1 status: "" is liveness, READINESS_SERVICE is readiness (engine loaded)."""
        response = await self._unary(
            self._health.Check, health_request(service), CallOptions(timeout=timeout)
        )
        return ServingStatus.from_proto(response.status)

    async def wait_until_ready(
        self, timeout: float = 120.0, *, service: str = READINESS_SERVICE, poll_s: float = 0.5
    ) -> None:
        """Wait until `service` is SERVING; UnavailableError when `timeout` runs out first."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while True:
            left = deadline - time.monotonic()
            try:
                status = await self.health(service, timeout=max(0.1, min(5.0, left)))
                if status is ServingStatus.SERVING:
                    return
                last = status.value
            except GptossError as exc:
                last = str(exc)
            if time.monotonic() + poll_s >= deadline:
                raise UnavailableError(f"{self.target} not ready after {timeout:g}s ({last})")
            await asyncio.sleep(poll_s)

    def _timeout_for(self, timeout: float | None) -> float | None:
        return self._timeout if timeout is None else timeout

    async def _unary(self, method: Callable[..., Awaitable[T]], request: Any, options: CallOptions) -> T:
        deadline = deadline_after(self._timeout_for(options.get("timeout")))
        md = call_metadata(self._api_key, None, options.get("metadata"))
        attempt = 0
        while True:
            attempt += 1
            try:
                return await method(
                    request, timeout=remaining(deadline), metadata=md, wait_for_ready=self._wait_for_ready
                )
            except grpc.RpcError as exc:
                error = from_rpc_error(exc)
                delay = self._retry.retry_delay(error, attempt, deadline)
                if delay is None:
                    raise error from exc
            await asyncio.sleep(delay)
