"""A request's first output tokens stream one engine step at a time, whatever `stream_interval`.

vLLM's `stream_interval` (20 in the GPU profiles, like the seed's `vllm serve --stream-interval 20`)
sends a request's first token, then one output per N tokens: that saves frontend CPU at high
concurrency. But a Harmony reply shows nothing until its header (`<|channel|>analysis<|message|>`,
3 tokens; a tool call's header is longer) is closed, so the first visible delta waits for token N:
20 decode steps, ~250 ms at 64 streams and ~600 ms at 256 on the H200
(bench/results/anchors-1xH200-all-2026-12-02). With `stream_ramp_tokens` = K, tokens 1..K are sent
as they come, then the interval applies: K - 1 extra outputs per request (the GPU profiles: K = 4,
the first header and its first text token), instead of 20 steps of waiting.

vLLM has no per-request hook for this (0.32's `SamplingParams.stream_interval` can only raise the
engine's), so `install` wraps `RequestState.make_request_output` of the output processor, which
runs in our process (the same method in vLLM 0.26 and 0.32): inside the ramp, the call takes vLLM's
every-step path (the step's own tokens, as with `stream_interval` 1), and those tokens are then
marked sent, so the interval path resumes after them with nothing lost or repeated.
"""

from __future__ import annotations

import functools
from typing import Any

_ORIGINAL = "_gptoss_original"


def install(ramp_tokens: int) -> None:
    """Stream tokens 1..`ramp_tokens` of every DELTA request per step (0: vLLM's behaviour)."""
    from vllm.sampling_params import RequestOutputKind
    from vllm.v1.engine.output_processor import RequestState

    current = RequestState.make_request_output
    original = getattr(current, _ORIGINAL, current)
    if ramp_tokens <= 0:
        setattr(RequestState, "make_request_output", original)  # noqa: B010 (mypy: no method assignment)
        return

    @functools.wraps(original)
    def make_request_output(self: Any, new_token_ids: list[int], *args: Any, **kwargs: Any) -> Any:
        interval, tokens = self.stream_interval, self.detokenizer
        if (
            interval <= 1
            or tokens is None
            or self.output_kind != RequestOutputKind.DELTA
            or tokens.num_output_tokens() > ramp_tokens
        ):
            return original(self, new_token_ids, *args, **kwargs)
        self.stream_interval = 1  # every earlier ramp step was sent: this step's tokens are the delta
        try:
            output = original(self, new_token_ids, *args, **kwargs)
        finally:
            self.stream_interval = interval
        self.sent_tokens_offset = tokens.num_output_tokens()
        return output

    setattr(make_request_output, _ORIGINAL, original)
    setattr(RequestState, "make_request_output", make_request_output)  # noqa: B010
