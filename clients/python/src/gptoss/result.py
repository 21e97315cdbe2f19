"""The one fold of the event stream into a result: `complete()`, the CLI and the gateway use it.

Pure (no I/O), so it also serves incrementally: feed events one by one with `CompletionBuilder.add`
and read `result()` at any point. `unsent_arguments` is the one ToolCallDone patch-up, shared with
streaming code that forwards deltas.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from gptoss.events import (
    ContentDelta,
    Done,
    Event,
    FinishReason,
    PromptLogprobs,
    ReasoningDelta,
    Timings,
    TokenIds,
    TokenLogprob,
    ToolCallDelta,
    ToolCallDone,
    Usage,
)


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One complete tool call of the assistant turn."""

    id: str
    name: str
    arguments: str

    def parsed_arguments(self) -> Any:
        """The arguments decoded from JSON (raises ValueError when the model wrote invalid JSON)."""
        return json.loads(self.arguments) if self.arguments.strip() else {}

    def as_message_dict(self) -> dict[str, str]:
        """The shape `messages=[{"role": "assistant", "tool_calls": [...]}]` accepts."""
        return {"id": self.id, "name": self.name, "arguments": self.arguments}


@dataclass(frozen=True, slots=True)
class Completion:
    """One whole assistant turn."""

    reasoning: str
    content: str
    tool_calls: tuple[ToolCall, ...]
    finish_reason: FinishReason
    usage: Usage
    timings: Timings
    request_id: str = ""
    error_message: str = ""
    token_ids: tuple[int, ...] = ()
    # With logprobs: the tokens of `content` (texts concatenate to it), of `reasoning`, of the
    # raw-mode `token_ids`.
    content_logprobs: tuple[TokenLogprob, ...] = ()
    reasoning_logprobs: tuple[TokenLogprob, ...] = ()
    token_logprobs: tuple[TokenLogprob, ...] = ()
    prompt_logprobs: tuple[TokenLogprob, ...] = ()

    def as_assistant_message(self) -> dict[str, Any]:
        """This turn as a history message, to send back with the tool results."""
        message: dict[str, Any] = {"role": "assistant", "content": self.content}
        if self.reasoning:
            message["reasoning"] = self.reasoning
        if self.tool_calls:
            message["tool_calls"] = [call.as_message_dict() for call in self.tool_calls]
        return message


def unsent_arguments(sent: str, done: ToolCallDone) -> str:
    """The tail of a call's final arguments that its deltas did not carry.

    A service may send arguments only in ToolCallDone (or finish them there); a stream that already
    forwarded `sent` must forward this rest. When the final text does not extend what was sent
    (it cannot be patched by appending), nothing is added: what was streamed stands.
    """
    return done.arguments[len(sent) :] if done.arguments.startswith(sent) else ""


@dataclass(slots=True)
class _PendingCall:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


class CompletionBuilder:
    """Accumulates the events of one choice (`choice`, 0 by default; others are skipped);
    `result()` once its Done event arrived."""

    def __init__(self, choice: int = 0) -> None:
        self.choice = choice
        self._reasoning: list[str] = []
        self._content: list[str] = []
        self._token_ids: list[int] = []
        self._content_logprobs: list[TokenLogprob] = []
        self._reasoning_logprobs: list[TokenLogprob] = []
        self._token_logprobs: list[TokenLogprob] = []
        self._prompt_logprobs: tuple[TokenLogprob, ...] = ()
        self._pending: dict[int, _PendingCall] = {}
        self._done_calls: dict[int, ToolCall] = {}
        self._done: Done | None = None

    def add(self, event: Event) -> None:
        if event.choice != self.choice:
            return
        if isinstance(event, ReasoningDelta):
            self._reasoning.append(event.text)
            self._reasoning_logprobs.extend(event.logprobs)
        elif isinstance(event, ContentDelta):
            self._content.append(event.text)
            self._content_logprobs.extend(event.logprobs)
        elif isinstance(event, ToolCallDelta):
            pending = self._pending.setdefault(event.index, _PendingCall())
            pending.id = pending.id or event.id
            pending.name = pending.name or event.name
            pending.arguments.append(event.arguments_delta)
        elif isinstance(event, ToolCallDone):
            pending = self._pending.get(event.index, _PendingCall())
            self._done_calls[event.index] = ToolCall(
                id=event.id or pending.id, name=event.name or pending.name, arguments=event.arguments
            )
        elif isinstance(event, TokenIds):
            self._token_ids.extend(event.token_ids)
            self._token_logprobs.extend(event.logprobs)
        elif isinstance(event, PromptLogprobs):
            self._prompt_logprobs = event.tokens
        elif isinstance(event, Done):
            self._done = event

    @property
    def done(self) -> bool:
        """Whether the Done event arrived (a stream that ended without it is incomplete)."""
        return self._done is not None

    def arguments_sent(self, index: int) -> str:
        """The argument text the ToolCallDelta events of call `index` carried so far."""
        pending = self._pending.get(index)
        return "".join(pending.arguments) if pending is not None else ""

    def unsent_arguments(self, done: ToolCallDone) -> str:
        """`unsent_arguments` for this stream's call; ask before `add(done)`-ing it or after, alike."""
        return unsent_arguments(self.arguments_sent(done.index), done)

    def result(self) -> Completion:
        """The turn so far; a stream that ended without Done reports finish_reason UNSPECIFIED."""
        done = self._done or Done(finish_reason=FinishReason.UNSPECIFIED)
        calls = dict(self._done_calls)
        # A call that streamed deltas but never got its ToolCallDone still shows what arrived.
        for index, pending in self._pending.items():
            calls.setdefault(index, ToolCall(pending.id, pending.name, "".join(pending.arguments)))
        return Completion(
            reasoning="".join(self._reasoning),
            content="".join(self._content),
            tool_calls=tuple(calls[i] for i in sorted(calls)),
            finish_reason=done.finish_reason,
            usage=done.usage,
            timings=done.timings,
            request_id=done.request_id,
            error_message=done.error_message,
            token_ids=tuple(self._token_ids),
            content_logprobs=tuple(self._content_logprobs),
            reasoning_logprobs=tuple(self._reasoning_logprobs),
            token_logprobs=tuple(self._token_logprobs),
            prompt_logprobs=self._prompt_logprobs,
        )


def total_usage(usages: list[Usage]) -> Usage:
    """A request's usage over its choices: the shared prompt once, every choice's completion."""
    if not usages:
        return Usage()
    return Usage(
        prompt_tokens=usages[0].prompt_tokens,
        completion_tokens=sum(u.completion_tokens for u in usages),
        reasoning_tokens=sum(u.reasoning_tokens for u in usages),
        cached_tokens=usages[0].cached_tokens,
    )


class ChoicesBuilder:
    """The fold of an n-choice stream: one CompletionBuilder per choice."""

    def __init__(self, n: int = 1) -> None:
        self.choices = [CompletionBuilder(i) for i in range(n)]

    def add(self, event: Event) -> None:
        if 0 <= event.choice < len(self.choices):
            self.choices[event.choice].add(event)

    @property
    def done(self) -> bool:
        return all(choice.done for choice in self.choices)

    def results(self) -> list[Completion]:
        return [choice.result() for choice in self.choices]
