"""gptoss.v1.InferenceService: admission, the planner (validation + render + request id), then one
GenerationStream per call."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
from gptoss.contract import REQUEST_ID_METADATA
from gptoss.v1 import inference_pb2 as pb
from gptoss.v1 import inference_pb2_grpc
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from service import choices, metrics, tokenizing, tracing, validation
from service.auth import ApiKeys
from service.config import Settings
from service.errors import ServiceError, abort, model_not_found
from service.generation import GenerationStream
from service.lifecycle import Admission, ServiceState
from service.planner import GenerationPlan, RequestPlanner
from service.prompt_renderer import PromptRenderer
from service.validation import VOCAB_SIZE

Context = grpc.aio.ServicerContext[object, object]
_SERVICE = pb.DESCRIPTOR.services_by_name["InferenceService"].full_name


class InferenceServicer(inference_pb2_grpc.InferenceServiceServicer):  # type: ignore[misc]
    def __init__(
        self,
        settings: Settings,
        state: ServiceState,
        renderer: PromptRenderer | None = None,
        keys: ApiKeys | None = None,
    ) -> None:
        self._settings = settings
        self._state = state
        self._planner = RequestPlanner(settings, renderer or PromptRenderer(workers=0))
        self._keys = keys or ApiKeys([])

    async def Generate(
        self, request: pb.GenerateRequest, context: Context
    ) -> AsyncIterator[pb.GenerateResponse]:
        code = "CANCELLED"  # unless we get to say otherwise: the client went away
        metadata = context.invocation_metadata()
        caller = self._keys.caller(metadata, context.peer())
        try:
            request_id = self._planner.request_id(request, metadata)
            n = validation.choices(request)
            self._state.serving_engine()
            admissions = await choices.admit(self._state, caller, n)
            try:
                # A request that waited in the queue may find a drain begun: refuse it now, before
                # any header goes out, so clients (the gateway's retry policy) can try another replica.
                self._state.serving_engine()
            except ServiceError:
                _release(admissions)
                raise
        except ServiceError as error:
            metrics.REQUESTS.labels("Generate", error.code.name).inc()
            await abort(context, error)
        root = tracing.tracer().start_span(
            f"{_SERVICE}/Generate",
            context=tracing.context_from_metadata(metadata),
            kind=SpanKind.SERVER,
            attributes={"gptoss.request_id": request_id},
        )
        try:
            await context.send_initial_metadata(((REQUEST_ID_METADATA, request_id),))
            with tracing.tracer().start_span("harmony.render", context=trace.set_span_in_context(root)):
                plan = await self._planner.plan_generate(request, request_id, caller)
            log_text = self._settings.log_prompts

            def stream(choice: GenerationPlan) -> AsyncIterator[pb.GenerateResponse]:
                return GenerationStream(choice, self._state, root, caller, log_text).run()

            async for response in choices.interleave(plan, stream):
                yield response
            code = "OK"
        except ServiceError as error:
            code = error.code.name
            # `abort` sends the status before it returns (then raises): free the slot first, so a
            # client that retries at once never finds it still taken.
            _release(admissions)
            await abort(context, error)
        finally:
            _release(admissions)
            metrics.REQUESTS.labels("Generate", code).inc()
            root.set_attribute("rpc.grpc.status_code", code)
            root.end()

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
            vocab_size=VOCAB_SIZE,
        )

    async def CountTokens(self, request: pb.CountTokensRequest, context: Context) -> pb.CountTokensResponse:
        try:
            prompt_tokens = await self._planner.count_tokens(request)
        except ServiceError as error:
            metrics.REQUESTS.labels("CountTokens", error.code.name).inc()
            await abort(context, error)
        metrics.REQUESTS.labels("CountTokens", "OK").inc()
        return pb.CountTokensResponse(
            prompt_tokens=prompt_tokens, max_context_length=self._settings.max_model_len
        )

    async def Tokenize(self, request: pb.TokenizeRequest, context: Context) -> pb.TokenizeResponse:
        try:
            self._check_model(request.model)
            token_ids = await tokenizing.tokenize(request.text)
        except ServiceError as error:
            metrics.REQUESTS.labels("Tokenize", error.code.name).inc()
            await abort(context, error)
        metrics.REQUESTS.labels("Tokenize", "OK").inc()
        return pb.TokenizeResponse(token_ids=token_ids, max_context_length=self._settings.max_model_len)

    async def Detokenize(self, request: pb.DetokenizeRequest, context: Context) -> pb.DetokenizeResponse:
        try:
            self._check_model(request.model)
            text = await tokenizing.detokenize(request.token_ids)
        except ServiceError as error:
            metrics.REQUESTS.labels("Detokenize", error.code.name).inc()
            await abort(context, error)
        metrics.REQUESTS.labels("Detokenize", "OK").inc()
        return pb.DetokenizeResponse(text=text)

    def _check_model(self, model: str) -> None:
        if model and model != self._settings.model_id:
            raise model_not_found(model)


def _release(admissions: list[Admission]) -> None:
    for admission in admissions:
        admission.release()
