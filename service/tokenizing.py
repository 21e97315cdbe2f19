"""Tokenize / Detokenize: the served model's Harmony encoding, for callers that own the format.

Special-token text (`<|start|>`, ...) encodes to the special tokens: raw-mode callers (legacy
completions) write Harmony themselves. Large inputs run in a thread, off the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from service.harmony.tokens import encoding
from service.validation import raw_prompt

IN_THREAD_ABOVE_CHARS = 64 << 10


def _encode(text: str) -> list[int]:
    return list(encoding().encode(text, allowed_special="all"))


def _decode(token_ids: list[int]) -> str:
    text: str = encoding().decode(token_ids, errors="replace")
    return text


async def tokenize(text: str) -> list[int]:
    if len(text) > IN_THREAD_ABOVE_CHARS:
        return await asyncio.to_thread(_encode, text)
    return _encode(text)


async def detokenize(token_ids: Sequence[int]) -> str:
    ids = raw_prompt(token_ids, "token_ids")  # the same id check as prompt_token_ids
    if len(ids) > IN_THREAD_ABOVE_CHARS:
        return await asyncio.to_thread(_decode, ids)
    return _decode(ids)
