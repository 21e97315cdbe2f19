"""The bench's output-shaping logits processor: the exact token sequence, and its batch bookkeeping."""

from __future__ import annotations

import pytest
import torch
from vllm import SamplingParams
from vllm.v1.sample.logits_processor import BatchUpdate, MoveDirectionality

from bench.shaped_output import HarmonyShape, shaped_sequence
from service.harmony import ContentText, HarmonyStreamParser, ReasoningText
from service.harmony.tokens import RETURN, encoding, is_special

SPECIAL_PREFIX = "<|channel|>analysis<|message|>"
SWITCH = "<|end|><|start|>assistant<|channel|>final<|message|>"


@pytest.mark.parametrize(("max_tokens", "k"), [(64, 16), (512, 16), (12, 16), (11, 3), (30, 0)])
def test_sequence_is_harmony_shaped_and_exactly_max_tokens_long(max_tokens: int, k: int) -> None:
    tokens = shaped_sequence(max_tokens, k)
    assert len(tokens) == max_tokens
    assert tokens[-1] == RETURN and RETURN not in tokens[:-1]
    text = encoding().decode(tokens)
    assert text.startswith(SPECIAL_PREFIX) and text.endswith("<|return|>")
    analysis, final = text[len(SPECIAL_PREFIX) : -len("<|return|>")].split(SWITCH)
    assert len(encoding().encode(analysis)) == min(k, max_tokens - 11)
    assert final and "<|" not in analysis + final  # no special token inside text
    specials = [t for t in tokens if is_special(t)]
    assert len(specials) == 2 + 4 + 1  # header (2), switch (4), return


def test_our_parser_streams_reasoning_then_content_from_it() -> None:
    parser = HarmonyStreamParser()
    events = [e for t in shaped_sequence(40, 8) for e in parser.feed([t])]
    kinds = [type(e) for e in events]
    assert ReasoningText in kinds and ContentText in kinds
    assert kinds.index(ContentText) > max(i for i, k in enumerate(kinds) if k is ReasoningText)
    content = "".join(e.text for e in events if isinstance(e, ContentText))
    assert content.split()[:4] == ["the", "quick", "brown", "fox"]


def _processor() -> HarmonyShape:
    return HarmonyShape(None, torch.device("cpu"), False)


def test_processor_forces_each_rows_next_token_by_its_output_length() -> None:
    proc = _processor()
    outputs: list[list[int]] = [[], [1, 2, 3]]
    added = [
        (0, SamplingParams(max_tokens=20), [7], outputs[0]),
        (1, SamplingParams(max_tokens=4), [7], outputs[1]),
    ]
    proc.update_state(BatchUpdate(batch_size=2, removed=[], added=added, moved=[]))
    picked = proc.apply(torch.zeros(3, 201088)).argmax(dim=1).tolist()
    assert picked[:2] == [shaped_sequence(20, 16)[0], RETURN]
    assert not torch.isinf(
        proc.apply(torch.zeros(3, 201088))[2]
    ).any()  # a row without a request is left alone
    outputs[0].append(-1)  # a placeholder under async scheduling counts as a sampled position
    assert proc.apply(torch.zeros(2, 201088))[0].argmax().item() == shaped_sequence(20, 16)[1]


def test_processor_follows_removes_moves_and_swaps() -> None:
    proc = _processor()
    a, b = [], [0, 0]
    added = [(0, SamplingParams(max_tokens=50), None, a), (1, SamplingParams(max_tokens=50), None, b)]
    proc.update_state(BatchUpdate(batch_size=2, removed=[], added=added, moved=[]))
    proc.update_state(
        BatchUpdate(batch_size=2, removed=[], added=[], moved=[(0, 1, MoveDirectionality.SWAP)])
    )
    picked = proc.apply(torch.zeros(2, 201088)).argmax(dim=1).tolist()
    assert picked == [shaped_sequence(50, 16)[2], shaped_sequence(50, 16)[0]]
    proc.update_state(
        BatchUpdate(batch_size=1, removed=[1], added=[], moved=[(0, 1, MoveDirectionality.UNIDIRECTIONAL)])
    )
    logits = proc.apply(torch.zeros(2, 201088))
    assert not torch.isinf(logits[0]).any() and logits[1].argmax().item() == shaped_sequence(50, 16)[2]
