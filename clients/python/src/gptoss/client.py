"""Synchronous client (grpc): typed events, deadlines, retries before the first event, cancellation."""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterator, Sequence
from types import TracebackType
from typing import Any, TypeVar, Unpack

import grpc
from grpc_health.v1 import health_pb2_grpc

from gptoss.build import (
    CountTokensOptions,
    GenerateOptions,
    resolve_count_tokens_request,
    resolve_generate_request,
)
from gptoss.connection import (
    DEFAULT_TARGET,
    SERVICE_NAME,
    Metadata,
    RetryPolicy,
    TlsConfig,
    call_metadata,
    channel_args,
    deadline_after,
    remaining,
    resolve_tls,
)
from gptoss.errors import GptossError, UnavailableError, from_rpc_error
from gptoss.events import Event, event_from_proto
from gptoss.info import ModelInfo, ServingStatus, TokenCount, health_request
from gptoss.result import Completion, CompletionBuilder
from gptoss.v1 import inference_pb2 as pb
from gptoss.v1 import inference_pb2_grpc as pb_grpc

T = TypeVar("T")


class _CallSlot:
    """The stream's in-flight call, so another thread can cancel it while the reader is blocked."""

    def __init__(self) -> None:
        self.call: Any = None
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True
        if self.call is not None:
            self.call.cancel()


class EventStream(Iterator[Event]):
    """The events of one Generate call. Closing it (or leaving its `with` block) cancels the RPC."""

    def __init__(self, events: Generator[Event, None, None], request_id: str, slot: _CallSlot) -> None:
        self._events = events
        self._slot = slot
        self.request_id = request_id

    def __iter__(self) -> EventStream:
        return self

    def __next__(self) -> Event:
        return next(self._events)

    def close(self) -> None:
        """Stop reading; cancels the call on the server if it is still running."""
        self._events.close()

    def cancel(self) -> None:
        """Cancel from any thread (e.g. a watchdog) while another thread reads; the reader's loop ends."""
        self._slot.cancel()

    def collect(self) -> Completion:
        """Read the rest of the stream into one Completion."""
        builder = CompletionBuilder()
        with self:
            for event in self:
                builder.add(event)
        return builder.result()

    def __enter__(self) -> EventStream:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class Client:
    """Blocking client for gptoss.v1.InferenceService.

    `timeout` is the default per-call deadline in seconds (None: no deadline); every method takes
    its own `timeout` too. UNAVAILABLE is retried per `retry`, for Generate only until the first
    event arrived, within the same deadline.
    """

    def __init__(
        self,
        target: str = DEFAULT_TARGET,
        *,
        api_key: str | None = None,
        tls: TlsConfig | bool | None = None,
        timeout: float | None = None,
        retry: RetryPolicy | None = None,
        wait_for_ready: bool = False,
        channel_options: Sequence[tuple[str, Any]] = (),
        channel: grpc.Channel | None = None,
    ) -> None:
        tls_config = resolve_tls(tls)
        self.target = target
        self._api_key = api_key
        self._timeout = timeout
        self._retry = retry or RetryPolicy()
        self._wait_for_ready = wait_for_ready
        self._owns_channel = channel is None
        if channel is None:
            options = channel_args(tls_config, channel_options)
            if tls_config is not None:
                channel = grpc.secure_channel(target, tls_config.credentials(), options=options)
            else:
                channel = grpc.insecure_channel(target, options=options)
        self._channel = channel
        self._stub = pb_grpc.InferenceServiceStub(channel)
        self._health = health_pb2_grpc.HealthStub(channel)

    def close(self) -> None:
        if self._owns_channel:
            self._channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- Generate ---------------------------------------------------------------------------------

    def generate(
        self,
        request: Any | None = None,
        /,
        *,
        timeout: float | None = None,
        request_id: str | None = None,
        metadata: Metadata | None = None,
        **options: Unpack[GenerateOptions],
    ) -> EventStream:
        """Stream one assistant turn. Pass a GenerateRequest or keyword options (messages=..., ...)."""
        proto = resolve_generate_request(request, request_id, options)
        rid = proto.request_id
        md = call_metadata(self._api_key, rid, metadata)
        slot = _CallSlot()
        return EventStream(self._events(proto, self._timeout_for(timeout), md, rid, slot), rid, slot)

    def complete(
        self,
        request: Any | None = None,
        /,
        *,
        timeout: float | None = None,
        request_id: str | None = None,
        metadata: Metadata | None = None,
        **options: Unpack[GenerateOptions],
    ) -> Completion:
        """Generate and collect the whole turn (reasoning, content, tool calls, usage, timings)."""
        stream = self.generate(request, timeout=timeout, request_id=request_id, metadata=metadata, **options)
        return stream.collect()

    def _events(
        self, request: Any, timeout: float | None, metadata: Metadata, request_id: str, slot: _CallSlot
    ) -> Generator[Event, None, None]:
        deadline = deadline_after(timeout)
        attempt = 0
        while not slot.cancelled:
            attempt += 1
            call = self._stub.Generate(
                request, timeout=remaining(deadline), metadata=metadata, wait_for_ready=self._wait_for_ready
            )
            slot.call = call
            if slot.cancelled:  # cancel() raced with the call's creation
                call.cancel()
            received = False
            try:
                for response in call:
                    received = True
                    event = event_from_proto(response)
                    if event is not None:
                        yield event
                return
            except grpc.RpcError as exc:
                if slot.cancelled:
                    return  # our own cancel(): end the stream quietly
                error = from_rpc_error(exc, request_id=request_id or None)
                delay = None if received else self._retry.retry_delay(error, attempt, deadline)
                if delay is None:
                    raise error from exc
            finally:
                # No-op after a normal end; on close() / an exception it cancels the server's work.
                call.cancel()
            time.sleep(delay)

    # -- unary calls -------------------------------------------------------------------------------

    def model_info(self, *, timeout: float | None = None, metadata: Metadata | None = None) -> ModelInfo:
        """The served model and its limits."""
        response = self._unary(self._stub.GetModelInfo, pb.GetModelInfoRequest(), timeout, metadata)
        return ModelInfo.from_proto(response)

    def count_tokens(
        self,
        request: Any | None = None,
        /,
        *,
        timeout: float | None = None,
        metadata: Metadata | None = None,
        **options: Unpack[CountTokensOptions],
    ) -> TokenCount:
        """The Harmony-rendered prompt length of a conversation."""
        proto = resolve_count_tokens_request(request, options)
        return TokenCount.from_proto(self._unary(self._stub.CountTokens, proto, timeout, metadata))

    def health(self, service: str = SERVICE_NAME, *, timeout: float | None = None) -> ServingStatus:
        """grpc.health.v1 status: "" is liveness, the service name is readiness (engine loaded)."""
        response = self._unary(self._health.Check, health_request(service), timeout, None)
        return ServingStatus.from_proto(response.status)

    def wait_until_ready(
        self, timeout: float = 120.0, *, service: str = SERVICE_NAME, poll_s: float = 0.5
    ) -> None:
        """Block until readiness is SERVING; UnavailableError when `timeout` runs out first."""
        deadline = time.monotonic() + timeout
        last: str = "no answer"
        while True:
            left = deadline - time.monotonic()
            try:
                status = self.health(service, timeout=max(0.1, min(5.0, left)))
                if status is ServingStatus.SERVING:
                    return
                last = status.value
            except GptossError as exc:
                last = str(exc)
            if time.monotonic() + poll_s >= deadline:
                raise UnavailableError(f"{self.target} not ready after {timeout:.0f}s ({last})")
            time.sleep(poll_s)

    def _timeout_for(self, timeout: float | None) -> float | None:
        return self._timeout if timeout is None else timeout

    def _unary(
        self, method: Callable[..., T], request: Any, timeout: float | None, metadata: Metadata | None
    ) -> T:
        deadline = deadline_after(self._timeout_for(timeout))
        md = call_metadata(self._api_key, None, metadata)
        attempt = 0
        while True:
            attempt += 1
            try:
                return method(
                    request, timeout=remaining(deadline), metadata=md, wait_for_ready=self._wait_for_ready
                )
            except grpc.RpcError as exc:
                error = from_rpc_error(exc)
                delay = self._retry.retry_delay(error, attempt, deadline)
                if delay is None:
                    raise error from exc
            time.sleep(delay)
