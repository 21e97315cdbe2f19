"""Harmony's special tokens and the shared encoding (loaded once; oss-harmony embeds the vocab)."""

from __future__ import annotations

import functools

from openai_harmony import HarmonyEncoding, HarmonyEncodingName, load_harmony_encoding

RETURN = 200002  # <|return|>: the assistant's turn is over
CONSTRAIN = 200003  # <|constrain|>: content type follows (e.g. json)
CHANNEL = 200005  # <|channel|>: channel name follows
START = 200006  # <|start|>: a message header follows
END = 200007  # <|end|>: the message is over, another may follow
MESSAGE = 200008  # <|message|>: the header is over, content follows
CALL = 200012  # <|call|>: the message is a tool call; the turn stops for its result

# Engine stop tokens for an assistant turn: one place, used by render and by raw mode.
ASSISTANT_STOP_TOKENS: tuple[int, ...] = (RETURN, CALL)


@functools.cache
def encoding() -> HarmonyEncoding:
    return load_harmony_encoding(HarmonyEncodingName.HARMONY_GPT_OSS)


@functools.lru_cache(maxsize=1 << 16)
def token_bytes(token_id: int) -> bytes:
    """The raw bytes of one token; a token may hold part of a UTF-8 character."""
    text: str = encoding().decode([token_id], errors="surrogateescape")
    return text.encode("utf-8", "surrogateescape")


def is_special(token_id: int) -> bool:
    return token_id >= 199998
