"""Benchmark-only vLLM v1 logits processor: Harmony-shaped output of a fixed length from any weights.

Dummy (random) weights never close a Harmony header, so no frontend streams a single content delta
and chat TTFT / ITL / SSE cost stay invisible. Loaded into an engine (ours: `--set
logits_processors=["bench.shaped_output:HarmonyShape"]`; `vllm serve` and vLLM's gRPC server:
`--logits-processors bench.shaped_output:HarmonyShape`), it forces every request of that engine to

    <|channel|>analysis<|message|> + k words + <|end|><|start|>assistant<|channel|>final<|message|>
    + words ... + <|return|>

with `<|return|>` exactly at position max_tokens - 1, so every side (with or without ignore_eos,
which SMG refuses) produces the same tokens and the same count, and every parser streams reasoning
and then content deltas. Loading the processor is the opt-in (SMG cannot pass per-request extra
args); `BENCH_SHAPE_ANALYSIS_TOKENS` (engine process environment, default 16) sets k.
The text is a cycle of plain one-token words: never a special token, never a partial UTF-8 byte.
Written against the `vllm.v1.sample.logits_processor` interface of vLLM 0.26 and 0.32 (identical):
`output_tok_ids` is the live list of the request's sampled tokens (placeholders under async
scheduling), so its length is the position of the token being sampled.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from service.harmony.tokens import CHANNEL, END, MESSAGE, RETURN, START

if TYPE_CHECKING:
    import torch

FQCN = "bench.shaped_output:HarmonyShape"
ANALYSIS, ASSISTANT, FINAL = 35644, 173781, 17196  # "analysis", "assistant", "final"
WORDS = (290, 4853, 19705, 68347, 65613, 1072, 29082, 6446)  # " the quick brown fox jumps over lazy dog"
HEADER = (CHANNEL, ANALYSIS, MESSAGE)
SWITCH = (END, START, ASSISTANT, CHANNEL, FINAL, MESSAGE)
UNBOUNDED = 1 << 30  # max_tokens unset: no <|return|> is forced
ENV_ANALYSIS_TOKENS = "BENCH_SHAPE_ANALYSIS_TOKENS"


def analysis_tokens_from_env() -> int:
    return max(0, int(os.environ.get(ENV_ANALYSIS_TOKENS, "16")))


def shaped_token(position: int, max_tokens: int, analysis_tokens: int) -> int:
    """The token at `position` of a `max_tokens`-long shaped output: header, k words (fewer when the
    budget is short, so at least one final word fits), the switch to `final`, words, `<|return|>`."""
    if position >= max_tokens - 1:
        return RETURN
    k = min(analysis_tokens, max(0, max_tokens - len(HEADER) - len(SWITCH) - 2))
    if position < len(HEADER):
        return HEADER[position]
    if position < len(HEADER) + k:
        return WORDS[(position - len(HEADER)) % len(WORDS)]
    switch_at = position - len(HEADER) - k
    if switch_at < len(SWITCH):
        return SWITCH[switch_at]
    return WORDS[(position - len(HEADER) - len(SWITCH)) % len(WORDS)]


def shaped_sequence(max_tokens: int, analysis_tokens: int) -> list[int]:
    return [shaped_token(i, max_tokens, analysis_tokens) for i in range(max_tokens)]


def _processor_base() -> type[Any]:
    from vllm.v1.sample.logits_processor import LogitsProcessor

    base: type[Any] = LogitsProcessor
    return base


class HarmonyShape(_processor_base()):  # type: ignore[misc]
    """Forces each row of the batch to its request's next shaped token (all other logits -inf)."""

    def __init__(self, vllm_config: Any, device: torch.device, is_pin_memory: bool) -> None:
        self._device = device
        # Nothing in apply() may wait for the GPU: a pageable copy (torch.tensor(list, device=cuda), or the
        # value of `logits[index] = v`) holds the engine's host thread until the GPU has drained its queue,
        # losing async scheduling's overlap: 2.8 ms at 64 rows, 10.9 ms at 256 on the H200, against 0.16-0.28
        # ms with a pinned non-blocking copy and scalar fills (bench/index_copy_cost.py).
        self._pin = bool(is_pin_memory) and device.type == "cuda"
        self._k = analysis_tokens_from_env()
        self._rows: dict[int, tuple[int, list[int]]] = {}  # batch index -> (max_tokens, output ids)

    def is_argmax_invariant(self) -> bool:
        return False  # it changes greedy picks too

    def update_state(self, batch_update: Any) -> None:
        """Removed, then added, then moved: the order the interface prescribes."""
        if batch_update is None:
            return
        for index in batch_update.removed:
            self._rows.pop(index, None)
        for index, params, _prompt, output in batch_update.added:
            limit = params.max_tokens if params.max_tokens is not None else UNBOUNDED
            self._rows[index] = (limit, output)
        for a, b, direction in batch_update.moved:
            first, second = self._rows.pop(a, None), self._rows.pop(b, None)
            if first is not None:
                self._rows[b] = first
            if second is not None and direction.name == "SWAP":
                self._rows[a] = second

    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        import torch

        if not self._rows:
            return logits
        rows = [i for i in self._rows if i < logits.shape[0]]
        pairs = rows + [shaped_token(len(self._rows[i][1]), self._rows[i][0], self._k) for i in rows]
        # One host buffer (rows, then their tokens), one copy. The caching host allocator does not hand a
        # pinned block out again before the copy that used it has run.
        host = torch.tensor(pairs, dtype=torch.long)
        if self._pin:
            host = host.pin_memory()
        both = host.to(logits.device, non_blocking=self._pin)
        index, tokens = both[: len(rows)], both[len(rows) :]
        # Scalar fills: `logits[index] = value` first copies the value to the GPU (pageable, blocking).
        logits.index_fill_(0, index, float("-inf"))
        logits.view(-1).index_fill_(0, index * logits.shape[1] + tokens, 0.0)
        return logits
