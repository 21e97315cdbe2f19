"""Terminal output for `gptoss chat`: the answer on stdout, everything else on stderr.

Keeping stdout to the answer alone makes `gptoss chat "..." > answer.txt` useful, while a terminal
still shows reasoning (dimmed), tool calls and stats interleaved in arrival order.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, TextIO

from gptoss.events import ContentDelta, Done, Event, FinishReason, ReasoningDelta, ToolCallDone
from gptoss.result import Completion

_DIM, _BOLD, _CYAN, _RED, _RESET = "\x1b[2m", "\x1b[1m", "\x1b[36m", "\x1b[31m", "\x1b[0m"


def color_enabled(stream: TextIO, no_color: bool) -> bool:
    """ANSI only for a terminal, and never with --no-color or NO_COLOR (https://no-color.org)."""
    if no_color or os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class Style:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def _wrap(self, code: str, text: str) -> str:
        return f"{code}{text}{_RESET}" if self.enabled and text else text

    def dim(self, text: str) -> str:
        return self._wrap(_DIM, text)

    def bold(self, text: str) -> str:
        return self._wrap(_BOLD, text)

    def tool(self, text: str) -> str:
        return self._wrap(_CYAN, text)

    def error(self, text: str) -> str:
        return self._wrap(_RED, text)


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}s"


def format_stats(done: Done) -> list[str]:
    """Two lines: token usage, then finish reason, server timings and the request id."""
    u, t = done.usage, done.timings
    usage = (
        f"usage: prompt={u.prompt_tokens} completion={u.completion_tokens} "
        f"reasoning={u.reasoning_tokens} cached={u.cached_tokens} total={u.total_tokens}"
    )
    rate = ""
    if t.decode_time_s and u.completion_tokens > 1:
        rate = f" ({(u.completion_tokens - 1) / t.decode_time_s:.1f} tok/s)"
    timings = (
        f"finish={done.finish_reason.value} queue={_secs(t.queue_wait_s)} ttft={_secs(t.time_to_first_token_s)} "
        f"decode={_secs(t.decode_time_s)}{rate} total={_secs(t.total_s)}"
    )
    if done.request_id:
        timings += f" request_id={done.request_id}"
    return [usage, timings]


def completion_json(completion: Completion) -> str:
    data: dict[str, Any] = dataclasses.asdict(completion)
    data["usage"]["total_tokens"] = completion.usage.total_tokens
    return json.dumps(data, ensure_ascii=False)


class ChatPrinter:
    """Prints events as they arrive, keeping line breaks sane across the two streams."""

    def __init__(self, out: TextIO, err: TextIO, *, style: Style, show_reasoning: bool = True) -> None:
        self._out, self._err, self._style = out, err, style
        self._show_reasoning = show_reasoning
        self._out_open = False  # stdout has text without a trailing newline
        self._err_open = False
        self._in_reasoning = False

    def _write(self, stream: TextIO, text: str) -> None:
        if not text:
            return
        stream.write(text)
        stream.flush()

    def _end_out(self) -> None:
        if self._out_open:
            self._write(self._out, "\n")
            self._out_open = False

    def _end_err(self) -> None:
        if self._err_open:
            self._write(self._err, "\n")
            self._err_open = False
        self._in_reasoning = False

    def event(self, event: Event) -> None:
        if isinstance(event, ReasoningDelta):
            if not self._show_reasoning or not event.text:
                return
            self._end_out()
            if not self._in_reasoning and not self._style.enabled:
                self._write(self._err, "[reasoning] ")
            self._in_reasoning = True
            self._write(self._err, self._style.dim(event.text))
            self._err_open = not event.text.endswith("\n")
        elif isinstance(event, ContentDelta):
            if not event.text:
                return
            self._end_err()
            self._write(self._out, event.text)
            self._out_open = not event.text.endswith("\n")
        elif isinstance(event, ToolCallDone):
            self._end_out()
            self._end_err()
            call = f"tool call [{event.index}] {event.name}({event.arguments}) id={event.id}"
            self._write(self._err, self._style.tool(call) + "\n")
        elif isinstance(event, Done):
            self.done(event)

    def done(self, done: Done) -> None:
        self._end_out()
        self._end_err()
        if done.finish_reason is FinishReason.ERROR:
            message = done.error_message or "generation failed"
            self._write(self._err, self._style.error(f"error: {message}") + "\n")
        elif done.error_message:  # e.g. malformed Harmony output: the turn still ended normally
            self._write(self._err, self._style.dim(f"warning: {done.error_message}") + "\n")
        for line in format_stats(done):
            self._write(self._err, self._style.dim(line) + "\n")

    def interrupted(self) -> None:
        self._end_out()
        self._end_err()
        self._write(self._err, self._style.dim("[cancelled]") + "\n")
