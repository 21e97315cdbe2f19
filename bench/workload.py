"""Fixed synthetic workloads: one chat turn of about N prompt tokens, exactly M output tokens.

Every frontend gets the same conversation. Our side renders it with Harmony (the service's own
`plan_generate`), and the token-id form of a request is exactly what the service would feed the
engine for its chat form, so the engine, raw gRPC and `/v1/completions` see identical prompts.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

from gptoss.v1 import inference_pb2 as pb

from service.config import Settings
from service.engine import SamplingOptions
from service.planner import plan_inline

WorkloadKind = Literal["tokens", "chat"]

# Plain English words: about one o200k token each, so prompt length is easy to steer.
_WORDS = (
    "the of and to in is was for on that with as by at from his it an were are which this be or has had "
    "not but first one their its new after who they have her she two been other when there all during "
    "into school time may years more most only over city some world would where later up such used many "
    "can state about national out known university united then made since them through what water light "
    "river north south east west house music team game year part people against under both between "
    "three well these while each because high long early small large great local found system state "
    "government company series film station church court village county market history number order "
    "season family group life power area field line name point public record road sound space table "
    "story value voice window winter summer morning evening garden letter mountain island bridge forest"
).split()


@dataclass(frozen=True)
class Workload:
    kind: WorkloadKind
    prompt_tokens: int  # target length of the rendered prompt
    output_tokens: int  # max_tokens with EOS ignored: every request generates exactly this many
    temperature: float = 1.0
    unique_prompts: bool = False  # a per-request prefix defeats prefix caching


@dataclass(frozen=True)
class Prompt:
    """One request's input in every form a client needs."""

    text: str  # the user message
    token_ids: tuple[int, ...]  # our Harmony rendering of the conversation (what the engine sees)


class PromptFactory:
    """Calibrates the filler so the rendered prompt is ~target tokens, then builds request i's prompt."""

    def __init__(self, settings: Settings, target_tokens: int, unique: bool, text: str | None = None) -> None:
        self._settings = settings
        self._unique = unique
        # A fixed user message instead of sized filler: a trained model (harmony-tiny) answers
        # only what it was taught, so the CPU run asks what it answers at length (--prompt-text).
        self._fixed = text
        rng = random.Random(20261127)
        self._filler = [rng.choice(_WORDS) for _ in range(max(64, 2 * target_tokens))]
        self._words = 0 if text is not None else self._calibrate(target_tokens)

    def _text(self, index: int, words: int) -> str:
        if self._fixed is not None:
            return self._fixed
        head = f"Request {index:06d}." if self._unique else "Request 000000."
        return head + " Summarise the following notes: " + " ".join(self._filler[:words])

    def _render(self, text: str) -> tuple[int, ...]:
        request = pb.GenerateRequest(messages=[pb.Message(role=pb.ROLE_USER, content=text)])
        return tuple(plan_inline(request, self._settings).prompt_token_ids)

    def _calibrate(self, target: int) -> int:
        low, high = 0, len(self._filler)
        while low < high:
            mid = (low + high + 1) // 2
            if len(self._render(self._text(0, mid))) <= target:
                low = mid
            else:
                high = mid - 1
        return low

    def prompt(self, index: int) -> Prompt:
        text = self._text(index, self._words)
        return Prompt(text=text, token_ids=self._render(text))


def engine_options(settings: Settings, workload: Workload, max_tokens: int) -> SamplingOptions:
    """The sampling options the service itself derives for such a request (raw mode, ignore_eos)."""
    request = pb.GenerateRequest(
        prompt_token_ids=[200006],
        max_tokens=max_tokens,
        ignore_eos=True,
        temperature=workload.temperature,
    )
    return plan_inline(request, settings).options
