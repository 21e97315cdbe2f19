"""Fill a step's grammar bitmasks in one native xgrammar call on its own threads.

Each engine step vLLM fills one bitmask per constrained request before it can sample, and the step
waits for them: one Python call per request, in one thread below 128 requests (vLLM 0.26 and 0.32),
else in a Python pool in batches of 16. A fill inside a JSON string costs 30-300 µs (the tokens that
could close the string are checked one by one), so 64 constrained streams added ~4 ms to a ~9 ms
step on the H200. xgrammar's `BatchGrammarMatcher` fills all rows in one call over native threads
without the GIL (`python -m bench.bitmask_fill_threads`).

`install(above)` wraps `StructuredOutputManager.grammar_bitmask` in the engine process. It takes
over only the batches vLLM fills serially (more than `above` constrained requests, at most vLLM's
own pool threshold of 128) and only the case it reproduces exactly (no speculative tokens,
grammars constrained from token one as `vllm_structured.configure` sets, xgrammar matchers); every
other step goes to vLLM unchanged. On the H200 (bench/results/structured-1xH200-2026-12-03/) it
helped at 64 constrained streams and was slower at 16, hence the default of 32.
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
from typing import Any

import xgrammar as xgr

_MARK = "_gptoss_batch_fill_above"

# Under "vllm": its handler prints this in the engine process.
log = logging.getLogger("vllm.gptoss_grammar_fill")


def default_threads() -> int:
    """vLLM's sizing of its own fill pool: half the cores, at most 8."""
    return max(1, min(multiprocessing.cpu_count() // 2, 8))


def batch_fill(
    manager: Any,
    requests: dict[str, Any],
    request_ids: list[str],
    spec_tokens: dict[str, list[int]],
    above: int,
) -> Any:
    """The step's bitmask rows (a numpy view, as vLLM returns), or None: leave this step to vLLM."""
    bitmask = getattr(manager, "_grammar_bitmask", None)  # None until vLLM's first fill allocates it
    if len(request_ids) <= above or bitmask is None or any(spec_tokens.values()):
        return None
    if len(request_ids) > getattr(manager, "fill_bitmask_parallel_threshold", 128):
        return None  # vLLM's own thread pool takes these batches
    if manager.vllm_config.num_speculative_tokens or not manager.enable_in_reasoning:
        return None
    grammars = [requests[request_id].structured_output_request.grammar for request_id in request_ids]
    if not all(isinstance(getattr(grammar, "matcher", None), xgr.GrammarMatcher) for grammar in grammars):
        return None
    rows: list[int] = []
    matchers: list[xgr.GrammarMatcher] = []
    for row, grammar in enumerate(grammars):
        if grammar.is_terminated():
            bitmask[row].fill_(manager._full_mask)  # as vLLM: a finished grammar masks nothing
        else:
            rows.append(row)
            matchers.append(grammar.matcher)
    if matchers:
        _batcher(manager).batch_fill_next_token_bitmask(matchers, bitmask, rows)
    return bitmask[: len(request_ids)].numpy()


def _batcher(manager: Any) -> xgr.BatchGrammarMatcher:
    batcher: xgr.BatchGrammarMatcher | None = getattr(manager, "_gptoss_batcher", None)
    if batcher is None:
        batcher = xgr.BatchGrammarMatcher(default_threads())
        manager._gptoss_batcher = batcher
    return batcher


def install(above: int, manager_cls: Any = None) -> bool:
    """Wrap vLLM's manager class (once; again replaces `above`). False (warned) if vLLM or xgrammar
    lacks what this relies on."""
    if manager_cls is None:
        from vllm.v1.structured_output import StructuredOutputManager as manager_cls
    original: Any = getattr(manager_cls, "grammar_bitmask", None)
    if original is None or not hasattr(xgr, "BatchGrammarMatcher"):
        log.warning("no StructuredOutputManager.grammar_bitmask or xgrammar.BatchGrammarMatcher: vLLM fills")
        return False
    if getattr(original, _MARK, None) is not None:
        original = original.__wrapped__

    @functools.wraps(original)
    def grammar_bitmask(
        self: Any, requests: dict[str, Any], request_ids: list[str], spec_tokens: dict[str, list[int]]
    ) -> Any:
        filled = batch_fill(self, requests, request_ids, spec_tokens, above)
        return original(self, requests, request_ids, spec_tokens) if filled is None else filled

    setattr(grammar_bitmask, _MARK, above)
    manager_cls.grammar_bitmask = grammar_bitmask
    log.info("structured output: above %d constrained requests, bitmasks filled in one batch call", above)
    return True


__all__ = ["batch_fill", "default_threads", "install"]
