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


__all__ = ["SamplingOptions"]
