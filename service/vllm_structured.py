"""How our engine configures vLLM's structured output, and the reasoning parser it uses.

`configure`: xgrammar (our tags use its token elements: Harmony headers by id; "auto" may pick
llguidance, which rejects them), constrained from token one (`enable_in_reasoning`: our tag spans
the analysis itself), and the parser below instead of vLLM's.

vLLM gives gpt-oss its `openai_gptoss` parser, which the structured-output manager builds for every
constrained request to find where the reasoning ends and the grammar starts. Our structural tag
spans the analysis itself (`enable_in_reasoning`), so no boundary is needed; and vLLM 0.26's parser
looks `<|end|>` up by its text, which the engine's 0xFF-marked tokenizer (service/engine_tokenizer.py)
does not have: the engine died on the first constrained request. vLLM loads this file by path into
the engine process (`reasoning_parser_plugin`); it registers the parser under `NAME`.

Parallel bitmask fill: each step vLLM fills one grammar bitmask per constrained request, serially
unless more than 128 are in the batch (`fill_bitmask_parallel_threshold`, hard-coded), and ~4 ms a
step at 64 streams on the H200. xgrammar's fill releases the GIL (bench/bitmask_fill_threads.py:
64 fills in 8 threads ran 3-5x faster), so `grammar_parallel_fill_above` lowers that threshold:
`configure` puts it in `PARALLEL_FILL_ENV`, which the engine process inherits, and this file, loaded
there inside `StructuredOutputManager.__init__` (after the threshold is set), wraps the manager's
`grammar_bitmask` so each manager uses it, with vLLM's fill pool (made here if vLLM made none).
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from vllm.reasoning import ReasoningParser, ReasoningParserManager

NAME = "gptoss_grammar_spans_reasoning"
# Not GPTOSS_GRAMMAR_PARALLEL_FILL_ABOVE: Settings would read that back in this process (tests).
PARALLEL_FILL_ENV = "GPTOSS_ENGINE_GRAMMAR_FILL_ABOVE"
_MARK = "_gptoss_parallel_fill_above"

# Under "vllm": its handler prints this in the engine process, which loads the file by path.
log = logging.getLogger("vllm.gptoss_structured")


def configure(config: Any, parallel_fill_above: int | None = None) -> None:
    """Set a `StructuredOutputsConfig` (vLLM 0.26 and 0.32) before the engine starts;
    `parallel_fill_above` (None: vLLM's) goes to the engine process through its environment."""
    config.backend = "xgrammar"
    config.enable_in_reasoning = True
    config.reasoning_parser_plugin = __file__  # the engine process loads this file by path
    config.reasoning_parser = NAME
    if parallel_fill_above is None:
        os.environ.pop(PARALLEL_FILL_ENV, None)  # nothing left from an earlier start in this process
    else:
        os.environ[PARALLEL_FILL_ENV] = str(parallel_fill_above)  # read where vLLM loads this file


def apply_parallel_fill(manager: Any, above: int) -> bool:
    """Make one `StructuredOutputManager` fill bitmasks in its thread pool above `above` requests."""
    if not hasattr(manager, "fill_bitmask_parallel_threshold"):
        log.warning(
            "vLLM's StructuredOutputManager has no fill_bitmask_parallel_threshold: %s ignored",
            PARALLEL_FILL_ENV,
        )
        return False
    manager.fill_bitmask_parallel_threshold = above
    if getattr(manager, "fill_bitmask_parallel_batch_size", None) is None:
        manager.fill_bitmask_parallel_batch_size = 16  # vLLM's
    if getattr(manager, "executor_for_fillmask", None) is None:  # vLLM's sizing; threads start on use
        workers = max(1, min(multiprocessing.cpu_count() // 2, 8))
        manager.executor_for_fillmask = ThreadPoolExecutor(workers, thread_name_prefix="gptoss-fillmask")
    return True


def install_parallel_fill(above: int, manager_cls: Any = None) -> bool:
    """Wrap `grammar_bitmask` of vLLM's manager class (once): every manager, including the one whose
    `__init__` is loading this file, takes `above` on its first step. False (warned) if vLLM lacks it."""
    if manager_cls is None:
        from vllm.v1.structured_output import StructuredOutputManager as manager_cls
    original: Any = getattr(manager_cls, "grammar_bitmask", None)
    if original is None:
        log.warning("vLLM's StructuredOutputManager has no grammar_bitmask: %s ignored", PARALLEL_FILL_ENV)
        return False
    if getattr(original, _MARK, None) is not None:
        original = original.__wrapped__  # installed already: replace the threshold

    @functools.wraps(original)
    def grammar_bitmask(self: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(self, _MARK, None) != above:
            setattr(self, _MARK, above)
            apply_parallel_fill(self, above)
        return original(self, *args, **kwargs)

    setattr(grammar_bitmask, _MARK, above)
    manager_cls.grammar_bitmask = grammar_bitmask
    log.info("structured output: grammar bitmasks filled in threads above %d requests", above)
    return True


class GrammarSpansReasoning(ReasoningParser):
    """Reasoning "has ended" from token one: the grammar constrains (and frees) the analysis."""

    def is_reasoning_end(self, input_ids: Sequence[int]) -> bool:
        return True

    def is_reasoning_end_streaming(self, input_ids: Sequence[int], delta_ids: Any) -> bool:
        return True

    def extract_content_ids(self, input_ids: list[int]) -> list[int]:
        return input_ids

    def extract_reasoning(self, model_output: str, request: Any) -> tuple[str | None, str | None]:
        return None, model_output  # never called: we parse Harmony ourselves

    def extract_reasoning_streaming(self, *args: Any, **kwargs: Any) -> None:
        return None  # never called: we parse Harmony ourselves


ReasoningParserManager.register_module(NAME, module=GrammarSpansReasoning)
if os.environ.get(PARALLEL_FILL_ENV):
    install_parallel_fill(int(os.environ[PARALLEL_FILL_ENV]))
