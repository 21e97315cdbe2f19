"""The reasoning budget: after `budget` analysis tokens, the answer is forced.

Engine-agnostic (vLLM or the scripted engine): the generation loop asks `cut_at` where a step
crosses the budget, keeps exactly the tokens before it, aborts that engine request and starts
a second one whose prompt is the prompt + the kept output + the forced `<|end|><|start|>assistant`.
Only plans without a grammar use it: a grammar counts its analysis tokens itself
(service/structured_output.py) and then allows only `<|end|>`, within one engine request. The forced tokens are parsed like generated ones
and count as completion tokens, so the stream and usage read as if the model had stopped there.
"""

from __future__ import annotations

import dataclasses

from service.harmony import tokens as tk
from service.harmony.parse import Event, HarmonyStreamParser, coalesce
from service.planner import GenerationPlan
from service.sampling import SamplingOptions

# `<|end|><|start|>assistant`: closes the analysis message and opens the answer's header.
FORCED_ANSWER: tuple[int, ...] = (tk.END, tk.START, *tk.encoding().encode("assistant", allowed_special=set()))
ANSWER_REQUEST_SUFFIX = "/answer"


class BudgetFeeder:
    """Feeds a step's tokens to the parser one at a time and stops at the budget."""

    def __init__(self, parser: HarmonyStreamParser, budget: int) -> None:
        self._parser = parser
        self._budget = budget
        self.spent = False

    def feed(self, token_ids: list[int]) -> tuple[list[Event], int]:
        """The parser's events and how many of the tokens it kept (all, unless the budget is hit)."""
        events: list[Event] = []
        parser = self._parser
        for kept, token in enumerate(token_ids):
            # The forced `<|end|>` counts as reasoning too: the text stops one short of the budget.
            if parser.in_analysis and parser.reasoning_tokens >= self._budget - 1 and token != tk.END:
                self.spent = True
                return coalesce(events), kept
            events.extend(parser.feed([token]))
        return coalesce(events), len(token_ids)


def answer_options(plan: GenerationPlan, completion_tokens: int) -> SamplingOptions | None:
    """Sampling of the answer request: the tokens left; None: no room."""
    left = plan.options.max_tokens - completion_tokens
    if left <= 0:
        return None
    return dataclasses.replace(plan.options, max_tokens=left)
