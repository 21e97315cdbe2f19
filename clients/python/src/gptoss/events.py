"""Typed stream events: frozen dataclasses so callers never touch proto oneofs or Durations."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from gptoss.v1 import inference_pb2 as pb


class FinishReason(enum.StrEnum):
    """Why a generation ended (mirrors gptoss.v1.FinishReason, OpenAI-style spelling)."""

    UNSPECIFIED = "unspecified"
    STOP = "stop"
    LENGTH = "length"
    TOOL_CALLS = "tool_calls"
    CANCELLED = "cancelled"
    ERROR = "error"


_FINISH_BY_PROTO: dict[int, FinishReason] = {
    pb.FINISH_REASON_UNSPECIFIED: FinishReason.UNSPECIFIED,
    pb.FINISH_REASON_STOP: FinishReason.STOP,
    pb.FINISH_REASON_LENGTH: FinishReason.LENGTH,
    pb.FINISH_REASON_TOOL_CALLS: FinishReason.TOOL_CALLS,
    pb.FINISH_REASON_CANCELLED: FinishReason.CANCELLED,
    pb.FINISH_REASON_ERROR: FinishReason.ERROR,
}


@dataclass(frozen=True, slots=True)
class TopLogprob:
    """One of the most likely tokens at a position."""

    token_id: int
    logprob: float
    token_bytes: bytes

    @property
    def token(self) -> str:
        """The token as text (bytes of a split UTF-8 character show as U+FFFD)."""
        return self.token_bytes.decode("utf-8", "replace")


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    """A generated token's logprob; `text` is what it added to its delta (the texts of a delta's
    tokens concatenate to the delta's text; empty for the first bytes of a split character)."""

    token_id: int
    logprob: float
    token_bytes: bytes
    text: str
    top_logprobs: tuple[TopLogprob, ...] = ()


Logprobs = tuple[TokenLogprob, ...]


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    """New text on the analysis (reasoning) channel."""

    text: str
    logprobs: Logprobs = ()
    # Which of the request's n choices (0 when n is 1).
    choice: int = 0


@dataclass(frozen=True, slots=True)
class ContentDelta:
    """New text of the final answer."""

    text: str
    logprobs: Logprobs = ()
    # Which of the request's n choices (0 when n is 1).
    choice: int = 0


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """Part of a streamed tool call: id and name on its first delta, then argument text."""

    index: int
    id: str
    name: str
    arguments_delta: str
    logprobs: Logprobs = ()
    # Which of the request's n choices (0 when n is 1).
    choice: int = 0


@dataclass(frozen=True, slots=True)
class ToolCallDone:
    """A complete tool call with its whole arguments JSON text."""

    index: int
    id: str
    name: str
    arguments: str
    # Which of the request's n choices (0 when n is 1).
    choice: int = 0


@dataclass(frozen=True, slots=True)
class TokenIds:
    """Generated token ids (raw prompt_token_ids mode only)."""

    token_ids: tuple[int, ...]
    logprobs: Logprobs = ()
    # Which of the request's n choices (0 when n is 1).
    choice: int = 0


@dataclass(frozen=True, slots=True)
class PromptLogprobs:
    """Raw mode with prompt_logprobs: each prompt token's logprob (the first has 0: nothing precedes it)."""

    tokens: Logprobs
    # Which of the request's n choices (0 when n is 1).
    choice: int = 0


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one request."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class Timings:
    """Server-side timings in seconds; None where the server did not report one."""

    queue_wait_s: float | None = None
    time_to_first_token_s: float | None = None
    decode_time_s: float | None = None
    total_s: float | None = None


@dataclass(frozen=True, slots=True)
class Done:
    """The last event of every successful stream."""

    finish_reason: FinishReason
    usage: Usage = field(default_factory=Usage)
    timings: Timings = field(default_factory=Timings)
    error_message: str = ""
    request_id: str = ""
    # Which of the request's n choices (0 when n is 1).
    choice: int = 0


Event = ReasoningDelta | ContentDelta | ToolCallDelta | ToolCallDone | TokenIds | PromptLogprobs | Done


def _seconds(msg: Any, name: str) -> float | None:
    if not msg.HasField(name):
        return None
    duration = getattr(msg, name)
    return float(duration.seconds) + float(duration.nanos) / 1e9


def finish_reason_from_proto(value: int) -> FinishReason:
    return _FINISH_BY_PROTO.get(value, FinishReason.UNSPECIFIED)


def done_from_proto(done: Any, choice: int = 0) -> Done:
    usage = done.usage
    timings = done.timings
    return Done(
        finish_reason=finish_reason_from_proto(done.finish_reason),
        usage=Usage(
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            cached_tokens=usage.cached_tokens,
        ),
        timings=Timings(
            queue_wait_s=_seconds(timings, "queue_wait"),
            time_to_first_token_s=_seconds(timings, "time_to_first_token"),
            decode_time_s=_seconds(timings, "decode_time"),
            total_s=_seconds(timings, "total"),
        ),
        error_message=done.error_message,
        request_id=done.request_id,
        choice=choice,
    )


def logprobs_from_proto(tokens: Any) -> Logprobs:
    if not tokens:
        return ()
    return tuple(
        TokenLogprob(
            token_id=t.token_id,
            logprob=t.logprob,
            token_bytes=t.token_bytes,
            text=t.text,
            top_logprobs=tuple(TopLogprob(a.token_id, a.logprob, a.token_bytes) for a in t.top_logprobs),
        )
        for t in tokens
    )


def event_from_proto(response: Any) -> Event | None:
    """Convert one GenerateResponse; None for an empty oneof (a newer server's unknown event)."""
    kind = response.WhichOneof("event")
    choice = response.choice_index
    if kind == "reasoning":
        r = response.reasoning
        return ReasoningDelta(r.text, logprobs_from_proto(r.logprobs), choice)
    if kind == "content":
        return ContentDelta(response.content.text, logprobs_from_proto(response.content.logprobs), choice)
    if kind == "tool_call":
        d = response.tool_call
        return ToolCallDelta(
            index=d.index,
            id=d.id,
            name=d.name,
            arguments_delta=d.arguments_delta,
            logprobs=logprobs_from_proto(d.logprobs),
            choice=choice,
        )
    if kind == "tool_call_done":
        d = response.tool_call_done
        return ToolCallDone(index=d.index, id=d.id, name=d.name, arguments=d.arguments, choice=choice)
    if kind == "token_ids":
        t = response.token_ids
        return TokenIds(tuple(t.token_ids), logprobs_from_proto(t.logprobs), choice)
    if kind == "prompt_logprobs":
        return PromptLogprobs(logprobs_from_proto(response.prompt_logprobs.tokens), choice)
    if kind == "done":
        return done_from_proto(response.done, choice)
    return None
