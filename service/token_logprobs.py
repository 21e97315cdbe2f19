"""Per-token logprobs on the stream's text deltas: engine logprobs + the parser's token pieces.

The parser says which tokens made a delta's text (and the text each added); the engine gives each
token's logprob. Content text may be held back by stop strings, so its tokens wait here until
their text is released, and a stop string that cuts a token's text cuts its `text` the same way:
the `text`s of a delta's tokens always concatenate to the delta's text.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from gptoss.v1 import inference_pb2 as pb

from service.harmony.parse import TokenPieces
from service.harmony.tokens import token_bytes
from service.sampling import TokenLogprobs


def token_logprob(entry: TokenLogprobs, text: str) -> pb.TokenLogprob:
    return pb.TokenLogprob(
        token_id=entry.token_id,
        logprob=entry.logprob,
        token_bytes=token_bytes(entry.token_id),
        text=text,
        top_logprobs=[
            pb.TopLogprob(token_id=token, logprob=logprob, token_bytes=token_bytes(token))
            for token, logprob in entry.top
        ],
    )


def raw_token_logprob(entry: TokenLogprobs) -> pb.TokenLogprob:
    """A token outside any parsed text (raw mode): its text is its own bytes as UTF-8."""
    return token_logprob(entry, token_bytes(entry.token_id).decode("utf-8", "replace"))


class StepLogprobs:
    """The logprobs of the current engine step's tokens, looked up by position in the completion
    (the parser's pieces of one step only name that step's tokens)."""

    def __init__(self) -> None:
        self._base = 0
        self._entries: Sequence[TokenLogprobs] = ()

    def step(self, entries: Sequence[TokenLogprobs] | None, count: int) -> None:
        """The next engine step: `count` new tokens and their logprobs."""
        self._base += len(self._entries)
        self._entries = list(entries or ())
        self._entries += [_MISSING] * (count - len(self._entries))

    def pieces(self, pieces: TokenPieces) -> list[pb.TokenLogprob]:
        return [token_logprob(self._entries[position - self._base], text) for position, text in pieces]


# An engine that reports fewer logprobs than tokens: never seen from vLLM, but never an IndexError.
_MISSING = TokenLogprobs(token_id=0, logprob=0.0)


class RawLogprobs:
    """Raw mode: logprobs of fed tokens wait until the token stop matcher releases those tokens."""

    def __init__(self) -> None:
        self._pending: deque[TokenLogprobs] = deque()

    def feed(self, entries: Sequence[TokenLogprobs] | None) -> None:
        self._pending.extend(entries or ())

    def release(self, tokens: Sequence[int]) -> list[pb.TokenLogprob]:
        out = []
        for _ in tokens:
            if not self._pending:
                break
            out.append(raw_token_logprob(self._pending.popleft()))
        return out


class HeldContentLogprobs:
    """Content tokens whose text the stop-string matcher has not released yet."""

    def __init__(self) -> None:
        self._held: deque[pb.TokenLogprob] = deque()
        self._credit = 0  # released characters not yet matched to a held token

    def hold(self, tokens: list[pb.TokenLogprob]) -> None:
        self._held.extend(tokens)

    def release(self, text: str, final: bool = False) -> list[pb.TokenLogprob]:
        """The tokens whose text lies within the newly released `text`; `final`: the content ends
        here (a stop string matched, or the stream ended), so a token the release cuts is cut."""
        self._credit += len(text)
        out = []
        while self._held and len(self._held[0].text) <= self._credit:
            token = self._held.popleft()
            self._credit -= len(token.text)
            out.append(token)
        if final:
            if self._held and self._credit:
                token = self._held.popleft()
                token.text = token.text[: self._credit]
                out.append(token)
            self._held.clear()
            self._credit = 0
        return out
