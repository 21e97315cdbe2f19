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

Bitmask fill: `grammar_parallel_fill_above` goes to the engine process in `PARALLEL_FILL_ENV`
(inherited), and this file, loaded there inside `StructuredOutputManager.__init__`, installs
service/vllm_grammar_fill.py's one-call batch fill before the manager's first step.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from vllm.reasoning import ReasoningParser, ReasoningParserManager

NAME = "gptoss_grammar_spans_reasoning"
# Not GPTOSS_GRAMMAR_PARALLEL_FILL_ABOVE: Settings would read that back in this process (tests).
PARALLEL_FILL_ENV = "GPTOSS_ENGINE_GRAMMAR_FILL_ABOVE"


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
    from service import vllm_grammar_fill

    vllm_grammar_fill.install(int(os.environ[PARALLEL_FILL_ENV]))
