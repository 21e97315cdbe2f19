"""How a turn ended, for both APIs: failed turns become errors, the rest an OpenAI finish reason."""

from __future__ import annotations

from typing import Protocol, TypeVar

from gptoss import FinishReason

from gateway._errors import GatewayError


class Ended(Protocol):
    """A Done event, or a Completion folded from the events up to it."""

    @property
    def finish_reason(self) -> FinishReason: ...
    @property
    def error_message(self) -> str: ...


E = TypeVar("E", bound=Ended)

NO_DONE = "the service ended the stream without a done event"


def check_finish(done: E | None) -> E:
    """A stream that ended without a usable turn becomes an error for the caller."""
    if done is None:
        raise GatewayError(502, NO_DONE, type="server_error")
    if done.finish_reason is FinishReason.CANCELLED:
        raise GatewayError(
            503,
            done.error_message or "the request was cancelled by the service",
            type="server_error",
            code="cancelled",
            retry_after=1,
        )
    if done.finish_reason is FinishReason.ERROR:
        raise GatewayError(
            500, done.error_message or "the model output could not be processed", type="server_error"
        )
    return done


def finish_reason(done: Ended, saw_tool_calls: bool) -> str:
    """OpenAI's finish_reason: length wins; otherwise a turn that made calls reports tool_calls."""
    if done.finish_reason is FinishReason.LENGTH:
        return "length"
    if done.finish_reason is FinishReason.TOOL_CALLS or saw_tool_calls:
        return "tool_calls"
    return "stop"
