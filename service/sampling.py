"""Engine-agnostic sampling options: what a plan asks of the engine (no vLLM import here)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SamplingOptions:
    """Engine-agnostic sampling; None means the engine default."""

    max_tokens: int
    stop_token_ids: tuple[int, ...]
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    min_p: float | None = None
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    ignore_eos: bool = False
    # None: no logprobs; k >= 0: the sampled token's logprob and the k most likely alternatives.
    logprobs: int | None = None
    logit_bias: tuple[tuple[int, float], ...] = ()
    prompt_logprobs: int | None = None
    # An xgrammar structural tag (JSON) the output must match (service/structured_output.py).
    structural_tag: str | None = None


@dataclass(frozen=True, slots=True)
class TokenLogprobs:
    """One generated token's logprob and its most likely alternatives (most likely first)."""

    token_id: int
    logprob: float
    top: tuple[tuple[int, float], ...] = ()


__all__ = ["SamplingOptions", "TokenLogprobs"]
