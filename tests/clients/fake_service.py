"""An in-process fake InferenceService (sync grpc server on threads) that plays scripted replies.

It pins what the real engine cannot be made to do on demand: UNAVAILABLE before or after the
first event, a call that hangs until cancelled, exact error details, exact event sequences.
Works for the sync and the async client alike because it runs on its own threads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2
from gptoss.contract import ERROR_DOMAIN, READINESS_SERVICE, STATUS_DETAILS_KEY
from gptoss.v1 import inference_pb2 as pb
from gptoss.v1 import inference_pb2_grpc as pb_grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

SERVICE = READINESS_SERVICE


@dataclass
class Fail:
    """End the call with a status and (unless raw_details is given) an ErrorInfo."""

    code: grpc.StatusCode
    message: str = "scripted failure"
    reason: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    raw_details: bytes | None = None

    def details(self) -> bytes | None:
        if self.raw_details is not None:
            return self.raw_details
        if self.reason is None:
            return None
        info = error_details_pb2.ErrorInfo(reason=self.reason, domain=ERROR_DOMAIN, metadata=self.metadata)
        packed = any_pb2.Any()
        packed.Pack(info)
        status = status_pb2.Status(code=self.code.value[0], message=self.message, details=[packed])
        return bytes(status.SerializeToString())


@dataclass
class Reply:
    """Stream `events` (with `delay_s` before each), then optionally hang or fail."""

    events: list[Any] = field(default_factory=list)
    delay_s: float = 0.0
    hang: bool = False
    then: Fail | None = None


def reasoning(text: str) -> Any:
    return pb.GenerateResponse(reasoning=pb.ReasoningDelta(text=text))


def content(text: str) -> Any:
    return pb.GenerateResponse(content=pb.ContentDelta(text=text))


def tool_call(index: int, call_id: str, name: str, args: str) -> list[Any]:
    """Deltas (id+name first, then two argument halves) and the ToolCallDone, as the service streams them."""
    half = len(args) // 2
    return [
        pb.GenerateResponse(tool_call=pb.ToolCallDelta(index=index, id=call_id, name=name)),
        pb.GenerateResponse(tool_call=pb.ToolCallDelta(index=index, arguments_delta=args[:half])),
        pb.GenerateResponse(tool_call=pb.ToolCallDelta(index=index, arguments_delta=args[half:])),
        pb.GenerateResponse(
            tool_call_done=pb.ToolCallDone(index=index, id=call_id, name=name, arguments=args)
        ),
    ]


def done(
    finish: Any = pb.FINISH_REASON_STOP,
    *,
    prompt: int = 11,
    completion: int = 7,
    reasoning_tokens: int = 3,
    cached: int = 2,
    ttft_ms: int = 250,
    request_id: str = "req-fake",
    error_message: str = "",
) -> Any:
    return pb.GenerateResponse(
        done=pb.Done(
            finish_reason=finish,
            usage=pb.Usage(
                prompt_tokens=prompt,
                completion_tokens=completion,
                reasoning_tokens=reasoning_tokens,
                cached_tokens=cached,
            ),
            timings=pb.Timings(
                queue_wait=duration_pb2.Duration(nanos=5_000_000),
                time_to_first_token=duration_pb2.Duration(nanos=ttft_ms * 1_000_000),
                decode_time=duration_pb2.Duration(seconds=1, nanos=500_000_000),
                # total left unset on purpose: the client must report None, not 0
            ),
            request_id=request_id,
            error_message=error_message,
        )
    )


class FakeInference(pb_grpc.InferenceServiceServicer):  # type: ignore[misc]
    """Plays `generate_script` (one entry per call; the last entry repeats)."""

    def __init__(self) -> None:
        self.generate_script: list[Reply | Fail] = [Reply([content("hello"), done()])]
        self.unary_failures: list[Fail] = []  # consumed by GetModelInfo / CountTokens, one per call
        self.requests: list[Any] = []
        self.metadata: list[dict[str, str]] = []
        self.unary_calls = 0
        self.cancelled = threading.Event()
        self._lock = threading.Lock()

    def _record(self, request: Any, context: grpc.ServicerContext) -> None:
        with self._lock:
            self.requests.append(request)
            self.metadata.append({k: v for k, v in context.invocation_metadata() if isinstance(v, str)})

    @staticmethod
    def _fail(context: grpc.ServicerContext, failure: Fail) -> None:
        details = failure.details()
        if details is not None:
            context.set_trailing_metadata(((STATUS_DETAILS_KEY, details),))
        context.abort(failure.code, failure.message)

    def Generate(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        self._record(request, context)
        with self._lock:
            step = self.generate_script[0] if len(self.generate_script) == 1 else self.generate_script.pop(0)
        if isinstance(step, Fail):
            self._fail(context, step)
            return
        if step.hang:
            # The server never ends this call itself, so its termination means the client cancelled
            # (the callback fires even when grpc stops pulling events before the hang loop).
            context.add_callback(self.cancelled.set)
        for event in step.events:
            if step.delay_s:
                time.sleep(step.delay_s)
            yield event
        if step.hang:
            while context.is_active():
                time.sleep(0.01)
            return
        if step.then is not None:
            self._fail(context, step.then)

    def _unary_prelude(self, request: Any, context: grpc.ServicerContext) -> None:
        self._record(request, context)
        with self._lock:
            self.unary_calls += 1
            failure = self.unary_failures.pop(0) if self.unary_failures else None
        if failure is not None:
            self._fail(context, failure)

    def GetModelInfo(self, request: Any, context: grpc.ServicerContext) -> Any:
        self._unary_prelude(request, context)
        return pb.GetModelInfoResponse(
            model_id="fake-model",
            max_context_length=4096,
            profile="fake",
            engine_version="0.0-fake",
            max_concurrent_requests=3,
        )

    def CountTokens(self, request: Any, context: grpc.ServicerContext) -> Any:
        self._unary_prelude(request, context)
        # A deterministic stand-in: 10 per message plus the characters of their content.
        tokens = sum(10 + len(m.content) for m in request.messages)
        return pb.CountTokensResponse(prompt_tokens=tokens, max_context_length=4096)


class FakeServer:
    """The fake servicer plus grpc.health.v1 on 127.0.0.1:<free port>."""

    def __init__(self, credentials: grpc.ServerCredentials | None = None) -> None:
        self.servicer = FakeInference()
        self.health = health.HealthServicer()
        self.health.set("", health_pb2.HealthCheckResponse.SERVING)
        self.health.set(SERVICE, health_pb2.HealthCheckResponse.SERVING)
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        pb_grpc.add_InferenceServiceServicer_to_server(self.servicer, self._server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self._server)
        if credentials is None:
            port = self._server.add_insecure_port("127.0.0.1:0")
        else:
            port = self._server.add_secure_port("127.0.0.1:0", credentials)
        self.target = f"127.0.0.1:{port}"

    def set_readiness(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        self.health.set(SERVICE, status)

    def __enter__(self) -> FakeServer:
        self._server.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.stop(grace=None)
