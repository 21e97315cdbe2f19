"""Warm-up before readiness: the engine runs the batch shapes of real traffic before SERVING.

A fresh engine JIT-compiles Triton kernels (gpt-oss MoE routing: `_topk_forward`,
`_combined_routing_*`) on the first step of a shape it has not run; vLLM's start-up only covers
CUDA-graph sizes and one profile step. Triton specializes integer arguments on divisibility by 16,
and steps above the largest CUDA-graph size run with their exact token count, so the first burst of
many requests (whose prompts share a prefix: after the first chunk, most of each prompt comes from
the prefix cache and the step holds a few odd tokens per request) hits shapes that a warm-up of round
sizes never ran, and stalls 2-7 s on the GPU. So before readiness this runs, as concurrent waves:

1. one token through the engine (readiness means a request can be served);
2. `max_num_seqs` requests with one shared prompt of odd length (the first-burst shape: full chunks,
   then prefix-cache hits with a ragged remainder each), a few tokens each, so decode also runs at
   the full batch;
3. a few unique prompts of odd length (full prefill chunks of unaligned sizes, no cache hits);
4. constrained requests (a JSON structural tag), alone and as a full batch: the grammar path has its
   own kernel (`apply_token_bitmask_inplace_kernel`), which otherwise JIT-compiled on the first
   structured request (2.4 s on one H200).

Readiness stays NOT_SERVING until it is done (the caller sets the phase afterwards); its duration
is logged. `warmup=false` in Settings keeps only step 1 (tests that start many engines).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from service.config import Settings
from service.engine import Engine
from service.harmony.tokens import ASSISTANT_STOP_TOKENS, START
from service.sampling import SamplingOptions

log = logging.getLogger(__name__)

PROMPT_TOKENS = 1001  # odd on purpose: unaligned step sizes (a typical chat prompt's length)
OUTPUT_TOKENS = 8  # enough decode steps at the full batch
UNIQUE_PROMPTS = 4
_TEXT_BASE = 1000  # ordinary text token ids (no special token in a prompt)


def warmup_waves(settings: Settings) -> list[list[list[int]]]:
    """The prompts of each concurrent wave after the first token (see the module docstring)."""
    length = max(1, min(PROMPT_TOKENS, settings.max_model_len - OUTPUT_TOKENS - 2))
    if length % 2 == 0:
        length -= 1
    shared = [START, *(_TEXT_BASE + i % 5000 for i in range(length - 1))]
    burst = [shared] * settings.max_num_seqs
    unique = [
        [START, *(_TEXT_BASE + (i * 7 + n * 131) % 90000 for i in range(length - 1 - n))]
        for n in range(1, UNIQUE_PROMPTS + 1)
    ]
    return [burst, unique]


def _constrained_tag() -> str:
    from service.structured_output import ResponseFormatSpec, constraint_for

    found = constraint_for(ResponseFormatSpec("json_object"), (), "auto", ())
    assert found is not None
    return found.structural_tag(analysis=True, max_analysis_tokens=2)


async def _drain(
    engine: Engine, request_id: str, prompt: Sequence[int], max_tokens: int, tag: str | None = None
) -> None:
    # A grammar ends the turn itself (its stop tokens), so constrained requests keep eos.
    options = SamplingOptions(
        max_tokens=max_tokens,
        stop_token_ids=ASSISTANT_STOP_TOKENS,
        temperature=0.0,
        ignore_eos=tag is None,
        structural_tag=tag,
    )
    async for _ in engine.generate(request_id, list(prompt), options):
        pass


async def warm_up(engine: Engine, settings: Settings) -> float:
    """Run the warm-up; returns its seconds. An engine error propagates (the start fails)."""
    started = time.monotonic()
    await _drain(engine, "warm-up", [START, 1428], 1)
    requests = 1
    if settings.warmup:
        for number, wave in enumerate(warmup_waves(settings)):
            await asyncio.gather(
                *(_drain(engine, f"warm-up-{number}-{i}", p, OUTPUT_TOKENS) for i, p in enumerate(wave))
            )
            requests += len(wave)
        tag = _constrained_tag()
        prompt = warmup_waves(settings)[1][0]
        for number, size in enumerate((1, settings.max_num_seqs)):
            await asyncio.gather(
                *(
                    _drain(engine, f"warm-up-json-{number}-{i}", prompt, OUTPUT_TOKENS, tag)
                    for i in range(size)
                )
            )
            requests += size
    took = time.monotonic() - started
    log.info(
        "warm-up done in %.1fs (%d requests, batch range up to %d)", took, requests, settings.max_num_seqs
    )
    return took
