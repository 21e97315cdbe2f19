"""service/vllm_stream_ramp.py on vLLM's real output processor: which outputs a request's tokens
come out in, with `stream_interval` 20, and that no token is lost or repeated across the ramp's end."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator

import pytest
from vllm import RequestOutput, SamplingParams
from vllm.sampling_params import RequestOutputKind
from vllm.v1.engine import EngineCoreOutput, EngineCoreRequest, FinishReason
from vllm.v1.engine.output_processor import OutputProcessor, RequestState

from service import vllm_stream_ramp

TOKENS = list(range(1000, 1040))  # 40 output tokens; the request stops at the last


@pytest.fixture(autouse=True)
def restore() -> Iterator[None]:
    original = RequestState.make_request_output
    yield
    vllm_stream_ramp.install(0)
    assert RequestState.make_request_output is original


def chunks(ramp: int, per_step: int, kind: RequestOutputKind = RequestOutputKind.DELTA) -> list[list[int]]:
    """Feed TOKENS `per_step` at a time through an OutputProcessor with stream_interval 20."""
    vllm_stream_ramp.install(ramp)
    processor = OutputProcessor(None, log_stats=False, stream_interval=20)
    params = SamplingParams(max_tokens=len(TOKENS), detokenize=False, output_kind=kind)
    request = EngineCoreRequest(
        request_id="r",
        prompt_token_ids=[1, 2, 3],
        mm_features=None,
        sampling_params=params,
        pooling_params=None,
        arrival_time=time.time(),
        lora_request=None,
        cache_salt=None,
        data_parallel_rank=None,
        external_req_id="r",
    )
    processor.add_request(request, None)
    seen: list[list[int]] = []
    for start in range(0, len(TOKENS), per_step):
        step = TOKENS[start : start + per_step]
        last = start + per_step >= len(TOKENS)
        output = EngineCoreOutput(
            request_id="r", new_token_ids=step, finish_reason=FinishReason.LENGTH if last else None
        )
        for out in processor.process_outputs([output]).request_outputs:
            assert isinstance(out, RequestOutput)
            seen.append(list(out.outputs[0].token_ids))
    return seen


def flat(seen: list[list[int]]) -> list[int]:
    return list(itertools.chain.from_iterable(seen))


def test_without_the_ramp_vllm_sends_the_first_token_then_every_20() -> None:
    assert [len(c) for c in chunks(ramp=0, per_step=1)] == [1, 20, 19]


def test_the_ramp_sends_the_first_tokens_per_step_then_the_interval_resumes() -> None:
    seen = chunks(ramp=8, per_step=1)
    assert [len(c) for c in seen] == [1] * 8 + [20, 12]
    assert flat(seen) == TOKENS


@pytest.mark.parametrize("per_step", [3, 7])
def test_steps_of_several_tokens_cross_the_ramp_without_loss_or_repeats(per_step: int) -> None:
    seen = chunks(ramp=8, per_step=per_step)
    assert flat(seen) == TOKENS
    assert len(seen[0]) == per_step  # the first step's tokens at once


def test_cumulative_requests_keep_vllm_behaviour() -> None:
    cumulative = RequestOutputKind.CUMULATIVE
    assert chunks(ramp=8, per_step=1, kind=cumulative) == chunks(ramp=0, per_step=1, kind=cumulative)


def test_install_twice_wraps_once() -> None:
    vllm_stream_ramp.install(4)
    vllm_stream_ramp.install(8)
    assert [len(c) for c in chunks(ramp=8, per_step=1)] == [1] * 8 + [20, 12]
