"""gptoss.v1.InferenceService: admission, validation + Harmony render, then one GenerationStream per call."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import grpc
from gptoss.v1 import inference_pb2 as pb
from gptoss.v1 import inference_pb2_grpc
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from service import metrics, tracing
from service.config import Settings
from service.errors import ServiceError, abort
from service.generation import GenerationStream
from service.harmony import RenderError
from service.lifecycle import ServiceState
from service.prompt_renderer import PromptRenderer
from service.validation import (
    GenerationPlan,
    chat_to_render,
    count_prompt_tokens,
    plan_generate,
    render_failed,
)

Context = grpc.aio.ServicerContext[object, object]


class InferenceServicer(inference_pb2_grpc.InferenceServiceServicer):  # type: ignore[misc]
    def __init__(
        self, settings: Settings, state: ServiceState, renderer: PromptRenderer | None = None
    ) -> None:
        self._settings = settings
        self._state = state
        self._renderer = renderer or PromptRenderer(workers=0)

    async def Generate(
        self, request: pb.GenerateRequest, context: Context
    ) -> AsyncIterator[pb.GenerateResponse]:  # type: ignore[override]
        code = "CANCELLED"  # unless we get to say otherwise: the client went away
        try:
            self._state.serving_engine()
            admission = await self._state.admit()
            try:
                # A request that waited in the queue may find a drain begun: refuse it now, before
                # any header goes out, so clients (the gateway's retry policy) can try another replica.
                self._state.serving_engine()
            except ServiceError:
                admission.release()
                raise
        except ServiceError as error:
            metrics.REQUESTS.labels("Generate", error.code.name).inc()
            await abort(context, error)
        request.request_id = (
            request.request_id or _metadata(context, "x-request-id") or f"req-{uuid.uuid4().hex}"
        )
        parent = tracing.context_from_metadata(context.invocation_metadata())
        root = tracing.tracer().start_span(
            "gptoss.v1.InferenceService/Generate",
            context=parent,
            kind=SpanKind.SERVER,
            attributes={"gptoss.request_id": request.request_id},
        )
        caller = _metadata(context, "x-gptoss-caller")  # set by the gateway: a key fingerprint, never a key
        try:
            await context.send_initial_metadata((("x-request-id", request.request_id),))
            with tracing.tracer().start_span("harmony.render", context=trace.set_span_in_context(root)):
                plan = await self._plan(request)
            async for response in GenerationStream(
                plan, self._state, root, caller, self._settings.log_prompts
            ).run():
                yield response
            code = "OK"
        except ServiceError as error:
            code = error.code.name
            # `abort` sends the status before it returns (then raises): free the slot first, so a
            # client that retries at once never finds it still taken.
            admission.release()
            await abort(context, error)
        finally:
            admission.release()
            metrics.REQUESTS.labels("Generate", code).inc()
            root.set_attribute("rpc.grpc.status_code", code)
            root.end()

    async def _plan(self, request: pb.GenerateRequest) -> GenerationPlan:
        chat = chat_to_render(request, self._settings)
        if chat is None:
            return plan_generate(request, self._settings)
        try:
            prompt = await self._renderer.render(chat)
        except RenderError as exc:
            raise render_failed(exc) from exc
        return plan_generate(request, self._settings, rendered=prompt)

    async def GetModelInfo(
        self, request: pb.GetModelInfoRequest, context: Context
    ) -> pb.GetModelInfoResponse:
        metrics.REQUESTS.labels("GetModelInfo", "OK").inc()
        return pb.GetModelInfoResponse(
            model_id=self._settings.model_id,
            max_context_length=self._settings.max_model_len,
            profile=self._settings.profile,
            engine_version=self._state.engine_version,
            max_concurrent_requests=self._settings.max_concurrent_requests,
        )

    async def CountTokens(self, request: pb.CountTokensRequest, context: Context) -> pb.CountTokensResponse:
        try:
            prompt_tokens = count_prompt_tokens(request, self._settings)
        except ServiceError as error:
            metrics.REQUESTS.labels("CountTokens", error.code.name).inc()
            await abort(context, error)
        metrics.REQUESTS.labels("CountTokens", "OK").inc()
        return pb.CountTokensResponse(
            prompt_tokens=prompt_tokens, max_context_length=self._settings.max_model_len
        )


def _metadata(context: Context, key: str) -> str:
    for name, value in context.invocation_metadata() or ():
        if name == key and isinstance(value, str):
            return value[:128]
    return ""
