"""Incremental Harmony parser: generated token ids in, typed events out.

Model output is arbitrary (random weights, cut-off generations), so this parser never raises:
it recovers from malformed structure (a missing `<|start|>`, stray special tokens, invalid
UTF-8), records what it saw in `problems`, and always yields whatever text it could parse.

Routing: `analysis` → reasoning; `final` and recipient-less `commentary` → content; a
`functions.NAME` recipient on any channel → a tool call; anything else (unknown channel,
a recipient that is not a function) → reasoning, so it never reaches the answer text.
"""

from __future__ import annotations

import codecs
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from service.harmony import tokens as tk
from service.harmony.render import FUNCTIONS_PREFIX

# With token tracking: (position of the token in the completion, the text it added), in order.
TokenPieces = tuple[tuple[int, str], ...]


@dataclass(frozen=True)
class ReasoningText:
    text: str
    tokens: TokenPieces = ()


@dataclass(frozen=True)
class ContentText:
    text: str
    tokens: TokenPieces = ()


@dataclass(frozen=True)
class ToolCallStart:
    index: int
    id: str
    name: str


@dataclass(frozen=True)
class ToolCallArguments:
    index: int
    text: str
    tokens: TokenPieces = ()


@dataclass(frozen=True)
class ToolCallEnd:
    index: int
    id: str
    name: str
    arguments: str


Event = ReasoningText | ContentText | ToolCallStart | ToolCallArguments | ToolCallEnd


class _State(Enum):
    HEADER = "header"  # after <|start|>: role, channel, recipient, content type
    CONTENT = "content"  # after <|message|>
    BETWEEN = "between"  # after <|end|>: waiting for <|start|>


class _Route(Enum):
    REASONING = "reasoning"
    CONTENT = "content"
    TOOL_CALL = "tool_call"


_RECIPIENT = re.compile(r"\bto=([^\s<]+)")
_WORD = re.compile(r"[^\s<]+")


@dataclass
class _OpenMessage:
    route: _Route
    decoder: codecs.IncrementalDecoder
    channel: str
    tool_index: int = -1
    tool_id: str = ""
    tool_name: str = ""
    arguments: str = ""


def split_header(header: str) -> tuple[str, str, str]:
    """Role, channel and recipient of a header, whatever order the model put them in.

    Real models place `to=RECIPIENT` in the role part (`assistant to=functions.x<|channel|>...`),
    after the channel (`<|channel|>commentary to=functions.x`) or after the content type
    (`<|channel|>commentary <|constrain|>json to=functions.x`); all mean the same.
    """
    role_part, _, channel_part = header.partition("<|channel|>")
    channel_words = _WORD.findall(channel_part.split("<|constrain|>")[0])
    channel = next((word for word in channel_words if not word.startswith("to=")), "")
    recipient_match = _RECIPIENT.search(header)
    recipient = recipient_match.group(1) if recipient_match else ""
    role_words = role_part.split("<|constrain|>")[0].split()
    role = next((word for word in role_words if not word.startswith("to=")), "")
    return role, channel, recipient


def new_tool_call_id() -> str:
    return "call_" + uuid.uuid4().hex[:24]


class HarmonyStreamParser:
    """Feed token-id deltas of one assistant turn; read events as they complete.

    The prompt ends with `<|start|>assistant`, so parsing starts inside a header.
    `track_tokens`: text events also say which tokens made their text (for logprobs); a token
    holding only part of a UTF-8 character then yields an event with empty text.
    """

    def __init__(self, id_factory: Callable[[], str] = new_tool_call_id, track_tokens: bool = False) -> None:
        self._new_id = id_factory
        self._track = track_tokens
        self._position = -1
        self._state = _State.HEADER
        self._header: list[int] = []
        self._message: _OpenMessage | None = None
        self._tool_calls = 0
        self._completed_tool_calls = 0
        self.reasoning_tokens = 0
        self.last_terminator: int | None = None
        self.problems: list[str] = []

    @property
    def tool_calls_completed(self) -> int:
        return self._completed_tool_calls

    @property
    def in_analysis(self) -> bool:
        """Inside an analysis message's content: the reasoning budget counts these tokens."""
        return self._message is not None and self._message.channel == "analysis"

    def feed(self, token_ids: list[int]) -> list[Event]:
        """Consume new tokens; return the events they complete, coalesced."""
        events: list[Event] = []
        for token in token_ids:
            try:
                self._consume(token, events)
            except Exception as exc:  # defensive: a parser bug must not kill the stream
                self._problem(f"parser error on token {token}: {exc!r}")
                self._state, self._message, self._header = _State.BETWEEN, None, []
        return coalesce(events)

    def finish(self) -> list[Event]:
        """The generation ended: flush an open message (no ToolCallEnd for a cut-off call)."""
        events: list[Event] = []
        if self._message is not None:
            self._emit_text(self._message.decoder.decode(b"", final=True), events)
            self._message = None
        elif self._state is _State.HEADER and self._header:
            self._problem("generation ended inside a message header")
        self._state, self._header = _State.BETWEEN, []
        return coalesce(events)

    # -- token handling -------------------------------------------------------------------

    def _consume(self, token: int, events: list[Event]) -> None:
        self._position += 1
        if self._message is not None:
            if self._message.channel == "analysis":
                self.reasoning_tokens += 1
        if token == tk.START:
            if self._state is _State.CONTENT:
                self._problem("<|start|> inside a message: closed it")
                self._close_message(events, complete=False)
            elif self._state is _State.HEADER and self._header:
                self._problem("<|start|> inside a header: header dropped")
            self._state, self._header = _State.HEADER, []
        elif token == tk.MESSAGE:
            if self._state is _State.CONTENT:
                self._problem("<|message|> inside a message: ignored")
            else:
                self._open_message(events)
        elif token in (tk.END, tk.RETURN, tk.CALL):
            self.last_terminator = token
            if self._state is _State.CONTENT:
                self._close_message(events, complete=True)
            elif self._state is _State.HEADER and self._header:
                self._problem("message ended inside its header")
            self._state, self._header = _State.BETWEEN, []
        elif self._state is _State.CONTENT:
            if tk.is_special(token):
                self._problem(f"special token {token} inside a message: dropped")
            else:
                assert self._message is not None
                text = self._message.decoder.decode(tk.token_bytes(token))
                self._emit_text(text, events, self._position if self._track else None)
        else:
            if self._state is _State.BETWEEN:
                self._problem("missing <|start|>: treating tokens as a header")
                self._state = _State.HEADER
            self._header.append(token)

    def _open_message(self, events: list[Event]) -> None:
        header = b"".join(tk.token_bytes(t) for t in self._header).decode("utf-8", errors="replace")
        self._header = []
        self._state = _State.CONTENT
        role, channel, recipient = split_header(header)
        if role and role != "assistant":
            self._problem(f"message from {role!r} in the assistant turn: kept as reasoning")
            recipient, channel = "", "analysis" if channel == "analysis" else f"{role}:{channel}"
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        if recipient.startswith(FUNCTIONS_PREFIX) and len(recipient) > len(FUNCTIONS_PREFIX):
            index, call_id, name = self._tool_calls, self._new_id(), recipient[len(FUNCTIONS_PREFIX) :]
            self._tool_calls += 1
            self._message = _OpenMessage(_Route.TOOL_CALL, decoder, channel, index, call_id, name)
            events.append(ToolCallStart(index, call_id, name))
            return
        if recipient:
            self._problem(f"recipient {recipient!r} is not a function: kept as reasoning")
            route = _Route.REASONING
        elif channel == "analysis":
            route = _Route.REASONING
        elif channel in ("final", "commentary"):
            route = _Route.CONTENT
        else:
            self._problem(f"unknown channel {channel!r}: kept as reasoning")
            route = _Route.REASONING
        self._message = _OpenMessage(route, decoder, channel)

    def _close_message(self, events: list[Event], *, complete: bool) -> None:
        message = self._message
        if message is None:
            return
        self._emit_text(message.decoder.decode(b"", final=True), events)
        if message.route is _Route.TOOL_CALL and complete:
            self._completed_tool_calls += 1
            events.append(
                ToolCallEnd(message.tool_index, message.tool_id, message.tool_name, message.arguments)
            )
        self._message = None

    def _emit_text(self, text: str, events: list[Event], position: int | None = None) -> None:
        message = self._message
        if message is None or not (text or position is not None):
            return
        pieces: TokenPieces = ((position, text),) if position is not None else ()
        if message.route is _Route.TOOL_CALL:
            message.arguments += text
            events.append(ToolCallArguments(message.tool_index, text, pieces))
        elif message.route is _Route.CONTENT:
            events.append(ContentText(text, pieces))
        else:
            events.append(ReasoningText(text, pieces))

    def _problem(self, what: str) -> None:
        if len(self.problems) < 20:
            self.problems.append(what)


def coalesce(events: list[Event]) -> list[Event]:
    """Merge neighbouring text deltas of the same kind: one message per kind per engine step."""
    merged: list[Event] = []
    for event in events:
        last = merged[-1] if merged else None
        if isinstance(event, ContentText) and isinstance(last, ContentText):
            merged[-1] = ContentText(last.text + event.text, last.tokens + event.tokens)
        elif isinstance(event, ReasoningText) and isinstance(last, ReasoningText):
            merged[-1] = ReasoningText(last.text + event.text, last.tokens + event.tokens)
        elif (
            isinstance(event, ToolCallArguments)
            and isinstance(last, ToolCallArguments)
            and last.index == event.index
        ):
            merged[-1] = ToolCallArguments(event.index, last.text + event.text, last.tokens + event.tokens)
        else:
            merged.append(event)
    return merged
