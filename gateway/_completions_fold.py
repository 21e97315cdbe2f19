"""Legacy completions: raw-mode token events -> `text_completion` choices (whole and chunks).

The service streams token ids with their logprobs (the gateway always asks for the sampled
token's logprob: its token bytes come with it); text is the UTF-8 of the token bytes, decoded
incrementally per choice so a character split across tokens is never torn.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field

from gptoss import Done, Event, PromptLogprobs, TokenIds, TokenLogprob, total_usage

from gateway._finish import check_finish, finish_reason
from gateway._logprobs import FLOOR
from gateway._translate_chat import Json, usage

_MAX_FLOAT = 3.4e38


def _value(logprob: float) -> float:
    return logprob if -_MAX_FLOAT < logprob < _MAX_FLOAT else FLOOR


@dataclass
class _Choice:
    decoder: codecs.IncrementalDecoder = field(
        default_factory=lambda: codecs.getincrementaldecoder("utf-8")(errors="replace")
    )
    text: list[str] = field(default_factory=list)
    tokens: list[TokenLogprob] = field(default_factory=list)
    token_texts: list[str] = field(default_factory=list)
    offset: int = 0  # characters of text so far (text_offset)
    done: Done | None = None
    prompt: Json | None = None  # echo + logprobs: the prompt's tokens, in the legacy shape


def prompt_json(tokens: tuple[TokenLogprob, ...]) -> Json:
    """The echoed prompt's tokens: the first has no logprob (nothing precedes it): null, as OpenAI's."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    out = logprobs_json(list(tokens), [decoder.decode(t.token_bytes) for t in tokens], 0)
    if tokens:
        out["token_logprobs"][0] = None  # type: ignore[index]
        out["top_logprobs"][0] = None  # type: ignore[index]
    return out


def _joined(prompt: Json | None, completion: Json) -> Json:
    if prompt is None:
        return completion
    return {key: [*prompt[key], *completion[key]] for key in completion}  # type: ignore[misc]


def logprobs_json(tokens: list[TokenLogprob], texts: list[str], start: int) -> Json:
    """OpenAI's legacy shape: parallel lists, top_logprobs as {token: logprob} maps."""
    offsets, at = [], start
    for text in texts:
        offsets.append(at)
        at += len(text)
    return {
        "tokens": [t.token_bytes.decode("utf-8", "replace") for t in tokens],
        "token_logprobs": [_value(t.logprob) for t in tokens],
        "top_logprobs": [{a.token: _value(a.logprob) for a in t.top_logprobs} for t in tokens],
        "text_offset": offsets,
    }


class TextChoices:
    """Folds raw-mode events into n text choices; `prefix` (echo) opens every choice's text."""

    def __init__(self, n: int, logprobs: bool, prefix: str = "") -> None:
        self._choices = [_Choice() for _ in range(n)]
        self._logprobs = logprobs
        self._prefix = prefix

    def on_event(self, event: Event) -> Json | None:
        """One streamed choice delta (None when the event adds nothing)."""
        if not 0 <= event.choice < len(self._choices):
            return None
        choice = self._choices[event.choice]
        if isinstance(event, PromptLogprobs):
            choice.prompt = prompt_json(event.tokens)
            if not self._prefix:
                return None
            return {
                "index": event.choice,
                "text": self._prefix,
                "logprobs": choice.prompt,
                "finish_reason": None,
            }
        if isinstance(event, TokenIds):
            texts = [choice.decoder.decode(t.token_bytes) for t in event.logprobs]
            start = choice.offset
            piece = "".join(texts)
            choice.text.append(piece)
            choice.tokens.extend(event.logprobs)
            choice.token_texts.extend(texts)
            choice.offset += len(piece)
            lp = (
                logprobs_json(list(event.logprobs), texts, start + len(self._prefix))
                if self._logprobs
                else None
            )
            return {"index": event.choice, "text": piece, "logprobs": lp, "finish_reason": None}
        if isinstance(event, Done):
            choice.done = check_finish(event)
            tail = choice.decoder.decode(b"", final=True)
            choice.text.append(tail)
            return {
                "index": event.choice,
                "text": tail,
                "logprobs": None,
                "finish_reason": finish_reason(event, False),
            }
        return None

    def start_chunks(self) -> list[Json]:
        """Echo: the prompt text first, once per choice (with logprobs: when its logprobs came)."""
        if not self._prefix or self._logprobs:
            return []
        return [
            {"index": i, "text": self._prefix, "logprobs": None, "finish_reason": None}
            for i in range(len(self._choices))
        ]

    @property
    def all_done(self) -> bool:
        return all(c.done is not None for c in self._choices)

    def usage(self) -> Json:
        return usage(total_usage([c.done.usage for c in self._choices if c.done is not None]))

    def whole(self) -> list[Json]:
        out = []
        for index, choice in enumerate(self._choices):
            ended = check_finish(choice.done)
            texts = choice.token_texts
            out.append(
                {
                    "index": index,
                    "text": self._prefix + "".join(choice.text),
                    "logprobs": (
                        _joined(choice.prompt, logprobs_json(choice.tokens, texts, len(self._prefix)))
                        if self._logprobs
                        else None
                    ),
                    "finish_reason": finish_reason(ended, False),
                }
            )
        return out
