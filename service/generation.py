"""One Generate request's stream: engine steps → Harmony events → GenerateResponse messages.

Owns what happens inside a stream: stop strings, usage and timings, metrics, the engine abort
on every early exit (cancel, deadline, stop string), and the trace spans of the engine and parser.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import AsyncIterator

from google.protobuf.duration_pb2 import Duration
from gptoss.v1 import inference_pb2 as pb
from opentelemetry import trace

from service import harmony, metrics, tracing
from service.engine import EngineDeadError, EngineStep, close_quietly
from service.errors import unavailable
from service.harmony import tokens as harmony_tokens
from service.lifecycle import ServiceState
from service.planner import GenerationPlan
from service.reasoning_budget import ANSWER_REQUEST_SUFFIX, FORCED_ANSWER, BudgetFeeder, answer_options
from service.sampling import TokenLogprobs
from service.stop_strings import StopStringMatcher
from service.token_logprobs import HeldContentLogprobs, RawLogprobs, StepLogprobs, raw_token_logprob
from service.token_stop_strings import TokenStopMatcher

log = logging.getLogger(__name__)


class GenerationStream:
    """One request's engine stream turned into GenerateResponse events; aborts the engine on exit."""

    def __init__(
        self,
        plan: GenerationPlan,
        state: ServiceState,
        span: trace.Span,
        caller: str = "",
        log_text: bool = False,
    ) -> None:
        self._plan = plan
        self._caller = caller
        # Only with `log_prompts` on: prompts and outputs are never logged by default.
        self._logged_tokens: list[int] | None = [] if log_text else None
        self._state = state
        self._span_context = trace.set_span_in_context(span)
        self._parse_ns = 0
        self._logprobs = plan.options.logprobs is not None
        self._parser = harmony.HarmonyStreamParser(track_tokens=self._logprobs)
        self._step_logprobs = StepLogprobs()
        self._raw_logprobs = RawLogprobs()
        self._held_logprobs = HeldContentLogprobs()
        self._stop = StopStringMatcher(plan.stop)
        self._token_stop = TokenStopMatcher(plan.stop if plan.raw else ())
        self._started = time.monotonic()
        self._first_token_at: float | None = None
        self._last_token_at: float | None = None
        self._completion_tokens = 0
        self._output: list[int] = []
        budget = plan.reasoning_budget
        self._budget = BudgetFeeder(self._parser, budget) if budget is not None and not plan.raw else None
        self._budget_events: list[harmony.Event] | None = None
        self._cut = False
        self._answering = False

    async def run(self) -> AsyncIterator[pb.GenerateResponse]:
        plan = self._plan
        engine = self._state.admitted_engine()
        last: EngineStep | None = None
        request_id, prompt, options = plan.engine_request_id, plan.prompt_token_ids, plan.options
        stream = engine.generate(request_id, prompt, options)
        engine_span = tracing.tracer().start_span("engine.generate", context=self._span_context)
        try:
            while True:
                async for step in stream:
                    last = self._within_budget(step)
                    self._count(last)
                    for response in self._responses(last):
                        yield response
                    if self._stop.matched or self._token_stop.matched or self._cut:
                        break
                if not self._cut or self._answering:
                    break
                # The budget is spent: end this engine request, force the answer (reasoning_budget.py).
                await close_quietly(stream)
                await engine.abort(request_id)
                for response in self._forced(FORCED_ANSWER):
                    yield response
                answer = answer_options(plan, self._completion_tokens)
                if answer is None:
                    last = EngineStep([], True, "length")
                    break
                self._answering, self._cut = True, False
                request_id = plan.engine_request_id + ANSWER_REQUEST_SUFFIX
                last, prompt = None, [*plan.prompt_token_ids, *self._output]
                stream = engine.generate(request_id, prompt, answer)
        except EngineDeadError as exc:
            self._state.admitted_engine()  # flips the phase to DEAD and raises UNAVAILABLE
            raise unavailable(f"engine failed: {exc}", "ENGINE_DEAD") from exc
        finally:
            if last is None or not last.finished or self._cut:
                await close_quietly(stream)
                await engine.abort(request_id)
            engine_span.set_attribute("gptoss.completion_tokens", self._completion_tokens)
            engine_span.end()
            self._record_parse_span()
        for response in self._flush():
            yield response
        yield self._done(last)

    def _within_budget(self, step: EngineStep) -> EngineStep:
        """The step's tokens up to the reasoning budget (all of them when none is hit)."""
        if self._budget is None or self._answering:
            return step
        self._budget_events, kept = self._budget.feed(step.token_ids)
        if kept == len(step.token_ids):
            return step
        self._cut = True
        logprobs = step.logprobs[:kept] if step.logprobs is not None else None
        return dataclasses.replace(step, token_ids=step.token_ids[:kept], logprobs=logprobs, finished=False)

    def _forced(self, tokens: tuple[int, ...]) -> list[pb.GenerateResponse]:
        """Forced tokens go through the parser like generated ones and count as completion tokens."""
        logprobs = tuple(TokenLogprobs(t, 0.0) for t in tokens) if self._logprobs else None
        step = EngineStep(token_ids=list(tokens), logprobs=logprobs)
        self._count(step)
        return self._responses(step)

    def _count(self, step: EngineStep) -> None:
        if step.token_ids:
            now = time.monotonic()
            self._first_token_at = self._first_token_at or now
            self._last_token_at = now
            self._completion_tokens += len(step.token_ids)
            self._output.extend(step.token_ids)
            if self._logged_tokens is not None:
                self._logged_tokens.extend(step.token_ids)

    def _responses(self, step: EngineStep) -> list[pb.GenerateResponse]:
        if self._plan.raw:
            if self._logprobs:
                self._raw_logprobs.feed(step.logprobs)
            scored = _prompt_logprobs(step)
            return scored + self._token_ids(self._token_stop.feed(step.token_ids))
        if self._logprobs:
            self._step_logprobs.step(step.logprobs, len(step.token_ids))
        started = time.perf_counter_ns()
        events, self._budget_events = self._budget_events, None
        responses = self._to_proto(events if events is not None else self._parser.feed(step.token_ids))
        self._parse_ns += time.perf_counter_ns() - started
        return responses

    def _record_parse_span(self) -> None:
        """Parsing interleaves with generation: one span whose length is the summed parse time."""
        if self._plan.raw:
            return
        end = time.time_ns()
        parse = tracing.tracer().start_span(
            "harmony.parse", context=self._span_context, start_time=end - self._parse_ns
        )
        parse.end(end_time=end)

    def _flush(self) -> list[pb.GenerateResponse]:
        if self._plan.raw:
            return self._token_ids(self._token_stop.flush())
        responses = self._to_proto(self._parser.finish())
        tail = self._stop.flush()
        held = self._held_logprobs.release(tail, final=True) if self._logprobs else []
        if tail or held:
            responses.append(pb.GenerateResponse(content=pb.ContentDelta(text=tail, logprobs=held)))
        return responses

    def _token_ids(self, tokens: list[int]) -> list[pb.GenerateResponse]:
        if not tokens:
            return []
        logprobs = self._raw_logprobs.release(tokens) if self._logprobs else []
        return [pb.GenerateResponse(token_ids=pb.TokenIds(token_ids=tokens, logprobs=logprobs))]

    def _content(self, event: harmony.ContentText) -> list[pb.GenerateResponse]:
        text = self._stop.feed(event.text)
        logprobs = []
        if self._logprobs:
            self._held_logprobs.hold(self._step_logprobs.pieces(event.tokens))
            logprobs = self._held_logprobs.release(text, final=self._stop.matched)
        if not (text or logprobs):
            return []
        return [pb.GenerateResponse(content=pb.ContentDelta(text=text, logprobs=logprobs))]

    def _to_proto(self, events: list[harmony.Event]) -> list[pb.GenerateResponse]:
        responses = []
        for event in events:
            if self._stop.matched:
                break
            if isinstance(event, harmony.ContentText):
                responses.extend(self._content(event))
            elif isinstance(event, harmony.ReasoningText):
                logprobs = self._step_logprobs.pieces(event.tokens)
                responses.append(
                    pb.GenerateResponse(reasoning=pb.ReasoningDelta(text=event.text, logprobs=logprobs))
                )
            elif isinstance(event, harmony.ToolCallStart):
                delta = pb.ToolCallDelta(index=event.index, id=event.id, name=event.name)
                responses.append(pb.GenerateResponse(tool_call=delta))
            elif isinstance(event, harmony.ToolCallArguments):
                logprobs = self._step_logprobs.pieces(event.tokens)
                delta = pb.ToolCallDelta(index=event.index, arguments_delta=event.text, logprobs=logprobs)
                responses.append(pb.GenerateResponse(tool_call=delta))
            else:
                done = pb.ToolCallDone(
                    index=event.index, id=event.id, name=event.name, arguments=event.arguments
                )
                responses.append(pb.GenerateResponse(tool_call_done=done))
        return responses

    def _finish_reason(self, last: EngineStep | None) -> pb.FinishReason:
        if self._stop.matched or self._token_stop.matched:
            return pb.FINISH_REASON_STOP
        if last is None or not last.finished or last.finish_reason == "abort":
            return pb.FINISH_REASON_CANCELLED
        if last.finish_reason == "length":
            return pb.FINISH_REASON_LENGTH
        # Under a grammar the turn may also end with <|return|> (vLLM adds the eos token to the
        # grammar's stop tokens); a completed call is still what the turn was.
        ends_call = last.stop_token_id == harmony_tokens.CALL or (
            self._plan.options.structural_tag is not None and last.stop_token_id == harmony_tokens.RETURN
        )
        if not self._plan.raw and ends_call and self._parser.tool_calls_completed:
            return pb.FINISH_REASON_TOOL_CALLS
        return pb.FINISH_REASON_STOP

    def _log_done(self, finish: pb.FinishReason, usage: pb.Usage, now: float) -> None:
        fields: dict[str, object] = {
            "request_id": self._plan.request_id,
            "choice": self._plan.choice,
            "caller": self._caller,
            "finish_reason": pb.FinishReason.Name(finish),
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "ttft_s": (self._first_token_at or now) - self._started,
            "total_s": now - self._started,
        }
        if self._logged_tokens is not None:
            fields["prompt_text"] = harmony_tokens.encoding().decode(self._plan.prompt_token_ids)
            fields["output_text"] = harmony_tokens.encoding().decode(self._logged_tokens)
        log.info("request done", extra=fields)

    def _done(self, last: EngineStep | None) -> pb.GenerateResponse:
        finish = self._finish_reason(last)
        now = time.monotonic()
        timings = pb.Timings(total=_duration(now - self._started))
        if self._first_token_at is not None:
            timings.time_to_first_token.CopyFrom(_duration(self._first_token_at - self._started))
            decode = (self._last_token_at or self._first_token_at) - self._first_token_at
            engine_timings = last.timings if last is not None else None
            if engine_timings is not None and engine_timings.decode is not None:
                decode = engine_timings.decode
            timings.decode_time.CopyFrom(_duration(decode))
        if last is not None and last.timings is not None and last.timings.queue_wait is not None:
            timings.queue_wait.CopyFrom(_duration(last.timings.queue_wait))
        usage = pb.Usage(
            prompt_tokens=len(self._plan.prompt_token_ids),
            completion_tokens=self._completion_tokens,
            reasoning_tokens=self._parser.reasoning_tokens,
            cached_tokens=last.num_cached_tokens if last is not None else 0,
        )
        metrics.observe_done(usage, timings, finish, self._completion_tokens)
        problems = "" if self._plan.raw else "; ".join(self._parser.problems)
        self._log_done(finish, usage, now)
        done = pb.Done(
            finish_reason=finish,
            usage=usage,
            timings=timings,
            request_id=self._plan.request_id,
            error_message=f"malformed Harmony output: {problems}" if problems else "",
        )
        return pb.GenerateResponse(done=done)


def _prompt_logprobs(step: EngineStep) -> list[pb.GenerateResponse]:
    if not step.prompt_logprobs:
        return []
    tokens = [raw_token_logprob(entry) for entry in step.prompt_logprobs]
    return [pb.GenerateResponse(prompt_logprobs=pb.PromptLogprobs(tokens=tokens))]


def _duration(seconds: float) -> Duration:
    duration = Duration()
    duration.FromNanoseconds(max(0, int(seconds * 1e9)))
    return duration
