"""Token logprobs in OpenAI's shapes (chat `logprobs.content[]`, Responses `output_text.logprobs`).

`token` is the text the token added to the answer, so the tokens concatenate to the content;
`bytes` are the token's raw bytes (a token may hold part of a UTF-8 character, then its `token`
is empty and the next token carries the character). An alternative that is the sampled token
shows the same `token`; other alternatives show their bytes decoded (U+FFFD for a split character).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from gptoss import TokenLogprob

Json = dict[str, object]
# JSON has no -Infinity: a probability that underflowed reads as this (vLLM's convention).
FLOOR = -9999.0


def _value(logprob: float) -> float:
    return logprob if math.isfinite(logprob) else FLOOR


def token_json(token: TokenLogprob) -> Json:
    return {
        "token": token.text,
        "logprob": _value(token.logprob),
        "bytes": list(token.token_bytes),
        "top_logprobs": [
            {
                "token": token.text if top.token_id == token.token_id else top.token,
                "logprob": _value(top.logprob),
                "bytes": list(top.token_bytes),
            }
            for top in token.top_logprobs
        ],
    }


def tokens_json(tokens: Sequence[TokenLogprob]) -> list[Json]:
    return [token_json(t) for t in tokens]


def chat_logprobs(tokens: Sequence[TokenLogprob]) -> Json:
    """A chat choice's `logprobs`: the final answer's tokens."""
    return {"content": tokens_json(tokens), "refusal": None}
