"""The request planner: one async step from a request to a plan, for every RPC.

Here and only here: the request id is chosen (the field, else `x-request-id`, else a new one),
the world is consulted (today's date, the caller's rights), and the chat is rendered through
`PromptRenderer` (worker processes for large inputs), with `RenderError` mapped by
`service.errors.render_failed`. The checks themselves are pure (`service.validation`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from gptoss.contract import REQUEST_ID_METADATA
from gptoss.v1 import inference_pb2 as pb

from service import structured_checks, validation
from service.auth import Metadata
from service.config import Settings
from service.errors import render_failed
from service.harmony import ChatRequest, RenderError
from service.harmony.response_formats import render_with_formats
from service.prompt_renderer import PromptRenderer
from service.sampling import SamplingOptions
from service.structured_output import ResponseFormatSpec

# Above this many request bytes, even the proto -> chat conversion (schemas: MessageToDict) runs
# in a thread, so it interleaves with the event loop instead of stalling it.
CONVERT_IN_THREAD_ABOVE_BYTES = 256 << 10


@dataclass(frozen=True)
class GenerationPlan:
    """A validated Generate request, ready for the engine."""

    request_id: str
    prompt_token_ids: list[int]
    options: SamplingOptions
    raw: bool
    stop: tuple[str, ...]
    # n > 1: `choice_plans` splits the plan into one per choice, `choice` its index.
    n: int = 1
    choice: int = 0
    # Analysis tokens before the answer is forced, for plans without a grammar
    # (service/reasoning_budget.py); None: no cap. A grammar carries its own budget.
    reasoning_budget: int | None = None

    @property
    def engine_request_id(self) -> str:
        """The engine's id of this plan's sequence: the request id, per choice when n > 1."""
        return self.request_id if self.n == 1 else f"{self.request_id}/{self.choice}"


def choice_plans(plan: GenerationPlan) -> list[GenerationPlan]:
    """One plan per choice, sharing the rendered prompt (the engine's prefix cache computes it once);
    a seed gives choice i the seed + i, so choices differ yet repeat."""
    seed = plan.options.seed
    return [
        dataclasses.replace(
            plan,
            choice=i,
            options=dataclasses.replace(plan.options, seed=None if seed is None else seed + i),
        )
        for i in range(plan.n)
    ]


class RequestPlanner:
    """Turns Generate and CountTokens requests into plans; raises ServiceError naming the param."""

    def __init__(
        self,
        settings: Settings,
        renderer: PromptRenderer,
        today: Callable[[], datetime.date] = datetime.date.today,
    ) -> None:
        self._settings = settings
        self._renderer = renderer
        self._today = today

    def request_id(self, request: pb.GenerateRequest, metadata: Metadata) -> str:
        """The id of a Generate request: chosen here, once, before any work."""
        if request.request_id:
            return validation.check_request_id(request.request_id, "request_id")
        for name, value in metadata or ():
            if name == REQUEST_ID_METADATA and isinstance(value, str) and value:
                return validation.check_request_id(value, REQUEST_ID_METADATA)
        return f"req-{uuid.uuid4().hex}"

    def ignore_eos_allowed(self, caller: str) -> bool:
        """`ignore_eos_callers`, or by default: everyone on cpu-* profiles (dev, CI), nobody elsewhere."""
        allowed = self._settings.ignore_eos_callers
        if allowed is None:
            return self._settings.profile.startswith("cpu")
        return "*" in allowed or caller in allowed

    async def plan_generate(
        self, request: pb.GenerateRequest, request_id: str, caller: str
    ) -> GenerationPlan:
        stop, options = self._checks(request, self.ignore_eos_allowed(caller))
        if request.prompt_token_ids:
            structured_checks.response_format(
                request.response_format, self._settings.max_tools_bytes, raw=True
            )
            structured_checks.reasoning_budget(request, False, 0, self._settings.max_model_len)
            prompt = validation.raw_prompt(request.prompt_token_ids)
            return self._plan(request, request_id, prompt, stop, options)
        prompt, chat, spec = await self._render(request)
        plan = self._plan(request, request_id, prompt, stop, options)
        return self._constrained(plan, request, chat, spec)

    def _raw_prompt(self, request: pb.GenerateRequest) -> list[int]:
        """Raw token ids; structured output needs Harmony, so raw requests refuse its fields."""
        structured_checks.response_format(request.response_format, self._settings.max_tools_bytes, raw=True)
        structured_checks.reasoning_budget(request, False, 0, self._settings.max_model_len)
        return validation.raw_prompt(request.prompt_token_ids)

    def _constrained(
        self,
        plan: GenerationPlan,
        request: pb.GenerateRequest,
        chat: ChatRequest,
        spec: ResponseFormatSpec | None,
    ) -> GenerationPlan:
        """The grammar and the reasoning budget of a chat plan (service/structured_output.py)."""
        found = structured_checks.constraint(request, chat, spec)
        settings = self._settings
        budget = structured_checks.reasoning_budget(
            request,
            found is not None,
            settings.structured_reasoning_budget,
            settings.max_model_len,
            plan.options.max_tokens,
        )
        if found is None:
            return dataclasses.replace(plan, reasoning_budget=budget)
        # Under a grammar the budget is the grammar's own (xgrammar counts the analysis tokens and
        # then allows only `<|end|>`): one engine request, nothing to cut and continue.
        tag = found.structural_tag(analysis=budget != 0, max_analysis_tokens=budget or None)
        return dataclasses.replace(plan, options=dataclasses.replace(plan.options, structural_tag=tag))

    def plan_inline(self, request: pb.GenerateRequest) -> GenerationPlan:
        """The same plan, rendered on the calling thread, ignore_eos allowed: for tools that build
        requests in-process (bench/workload.py), never for RPCs."""
        stop, options = self._checks(request, ignore_eos_allowed=True)
        if request.prompt_token_ids:
            prompt = self._raw_prompt(request)
        else:
            chat, spec = validation.chat_and_format(request, self._settings, self._date())
            try:
                prompt = render_with_formats(chat, spec.prompt_section if spec else "")
            except RenderError as exc:
                raise render_failed(exc) from exc
            plan = self._plan(request, request.request_id or "inline", prompt, stop, options)
            return self._constrained(plan, request, chat, spec)
        return self._plan(request, request.request_id or "inline", prompt, stop, options)

    def _checks(
        self, request: pb.GenerateRequest, ignore_eos_allowed: bool
    ) -> tuple[tuple[str, ...], SamplingOptions]:
        """The cheap checks, before any render; the budget (max_tokens) waits for the prompt."""
        validation.check_target(request, self._settings)
        stop = validation.stop_strings(request.stop)
        return stop, validation.sampling(request, 1, ignore_eos_allowed)

    def _plan(
        self,
        request: pb.GenerateRequest,
        request_id: str,
        prompt: list[int],
        stop: tuple[str, ...],
        options: SamplingOptions,
    ) -> GenerationPlan:
        raw = bool(request.prompt_token_ids)
        param = "prompt_token_ids" if raw else "messages"
        budget = validation.max_tokens(request, len(prompt), param, self._settings)
        return GenerationPlan(
            request_id=request_id,
            prompt_token_ids=prompt,
            options=dataclasses.replace(options, max_tokens=budget),
            raw=raw,
            stop=stop,
            n=validation.choices(request),
        )

    async def count_tokens(self, request: pb.CountTokensRequest) -> int:
        return len((await self._render(request))[0])

    def _date(self) -> str | None:
        return self._today().isoformat() if self._settings.include_conversation_date else None

    async def _render(
        self, request: pb.GenerateRequest | pb.CountTokensRequest
    ) -> tuple[list[int], ChatRequest, ResponseFormatSpec | None]:
        size = request.ByteSize()  # messages and tools, schemas included; a C walk, cheap
        settings, date = self._settings, self._date()
        if size > CONVERT_IN_THREAD_ABOVE_BYTES:
            chat, spec = await asyncio.to_thread(validation.chat_and_format, request, settings, date)
        else:
            chat, spec = validation.chat_and_format(request, settings, date)
        try:
            section = spec.prompt_section if spec is not None else ""
            return await self._renderer.render(chat, size, section), chat, spec
        except RenderError as exc:
            raise render_failed(exc) from exc


def plan_inline(request: pb.GenerateRequest, settings: Settings) -> GenerationPlan:
    """`RequestPlanner.plan_inline` for one-off use (bench/workload.py)."""
    return RequestPlanner(settings, PromptRenderer(workers=0)).plan_inline(request)
