"""Logprobs on the real vLLM CPU engine: shape, and equality with vLLM's own values in raw mode."""

from __future__ import annotations

import grpc
import pytest
from gptoss.v1 import inference_pb2 as pb
from gptoss.v1 import inference_pb2_grpc

from service.harmony import tokens as tk
from service.planner import plan_inline
from tests.integration.test_generate_live import USER_HI, assert_well_formed, error_info
from tests.support.server_thread import ServerThread

pytestmark = pytest.mark.engine
SAMPLING = {"max_tokens": 24, "temperature": 1.0, "seed": 11, "logprobs": True, "top_logprobs": 5}


def text_tokens(responses: list[pb.GenerateResponse]) -> list[pb.TokenLogprob]:
    out: list[pb.TokenLogprob] = []
    for r in responses:
        kind = r.WhichOneof("event")
        if kind in ("reasoning", "content"):
            out.extend(getattr(r, kind).logprobs)
        elif kind == "tool_call":
            out.extend(r.tool_call.logprobs)
    return out


def check_shape(tokens: list[pb.TokenLogprob], k: int) -> None:
    for t in tokens:
        assert t.logprob <= 0
        assert len(t.top_logprobs) == k
        top = [a.logprob for a in t.top_logprobs]
        assert top == sorted(top, reverse=True)
        assert all(lp <= 0 for lp in top)
        if t.logprob >= top[-1] + 1e-6:  # within the top k: it must be listed, with its value
            listed = {a.token_id: a.logprob for a in t.top_logprobs}
            assert listed.get(t.token_id) == pytest.approx(t.logprob)
        assert t.token_bytes == tk.token_bytes(t.token_id)


def test_chat_logprobs_equal_vllms_raw_values_for_the_same_seed(
    stub: inference_pb2_grpc.InferenceServiceStub, live_server: ServerThread
) -> None:
    prompt = plan_inline(pb.GenerateRequest(messages=USER_HI), live_server.settings).prompt_token_ids
    compared = 0
    # The tiny random model (near-uniform logits) would spend a whole answer in Harmony headers:
    # a logit_bias on <|message|> opens messages, so there is text (with logprobs) to compare.
    # Try a few seeds; at least one must give text tokens, and every one must match vLLM's values.
    for seed in (11, 12, 13, 14):
        sampling = {**SAMPLING, "seed": seed, "max_tokens": 48, "logit_bias": {tk.MESSAGE: 10.0}}
        chat = list(stub.Generate(pb.GenerateRequest(messages=USER_HI, **sampling), timeout=120))  # type: ignore[arg-type]
        assert_well_formed(chat)
        raw = list(stub.Generate(pb.GenerateRequest(prompt_token_ids=prompt, **sampling), timeout=120))  # type: ignore[arg-type]
        raw_ids = [i for r in raw if r.HasField("token_ids") for i in r.token_ids.token_ids]
        raw_tokens = [t for r in raw if r.HasField("token_ids") for t in r.token_ids.logprobs]
        assert [t.token_id for t in raw_tokens] == raw_ids
        assert len(raw_ids) == raw[-1].done.usage.completion_tokens
        check_shape(raw_tokens, 5)
        chat_tokens = text_tokens(chat)
        check_shape(chat_tokens, 5)
        assert all(not tk.is_special(t.token_id) for t in chat_tokens)
        # The chat's text tokens are the raw stream's non-header tokens, with vLLM's values.
        position = 0
        for token in chat_tokens:
            while raw_tokens[position].token_id != token.token_id:
                position += 1
            assert token.logprob == raw_tokens[position].logprob
            assert list(token.top_logprobs) == list(raw_tokens[position].top_logprobs)
            position += 1
        compared += len(chat_tokens)
        if compared:
            break
    assert compared > 0


def test_bad_values_name_the_param(stub: inference_pb2_grpc.InferenceServiceStub) -> None:
    cases = [
        ({"logprobs": True, "top_logprobs": 21}, "top_logprobs"),
        ({"n": 129}, "n"),
        ({"logit_bias": {300000: 1.0}}, "logit_bias"),
        ({"logit_bias": {5: 101.0}}, "logit_bias"),
    ]
    for fields, param in cases:
        with pytest.raises(grpc.RpcError) as caught:
            list(stub.Generate(pb.GenerateRequest(messages=USER_HI, **fields), timeout=30))  # type: ignore[arg-type]
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error_info(caught.value).metadata["param"] == param


def test_logit_bias_bans_and_forces_tokens(stub: inference_pb2_grpc.InferenceServiceStub) -> None:
    forced = 1000
    responses = list(
        stub.Generate(
            pb.GenerateRequest(prompt_token_ids=[1, 2, 3], max_tokens=4, logit_bias={forced: 100.0}),
            timeout=60,
        )
    )
    ids = [i for r in responses if r.HasField("token_ids") for i in r.token_ids.token_ids]
    assert ids == [forced] * 4


def test_tokenize_and_detokenize_round_trip(stub: inference_pb2_grpc.InferenceServiceStub) -> None:
    tokens = stub.Tokenize(pb.TokenizeRequest(text="Hello, café<|end|>")).token_ids
    assert tk.END in tokens
    assert stub.Detokenize(pb.DetokenizeRequest(token_ids=tokens)).text == "Hello, café<|end|>"
    with pytest.raises(grpc.RpcError) as caught:
        stub.Detokenize(pb.DetokenizeRequest(token_ids=[-1]))
    assert error_info(caught.value).metadata["param"] == "token_ids"
    with pytest.raises(grpc.RpcError) as caught:
        stub.Tokenize(pb.TokenizeRequest(text="x", model="nope"))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_n_choices_differ_and_repeat_with_a_seed(stub: inference_pb2_grpc.InferenceServiceStub) -> None:
    def sample() -> dict[int, tuple[int, ...]]:
        request = pb.GenerateRequest(
            prompt_token_ids=[1, 2, 3], max_tokens=8, temperature=1.0, seed=4, n=3, ignore_eos=True
        )  # ignore_eos: the trained model may end a choice early; every choice is 8 tokens
        responses = list(stub.Generate(request, timeout=120))
        ids: dict[int, list[int]] = {0: [], 1: [], 2: []}
        for r in responses:
            if r.HasField("token_ids"):
                ids[r.choice_index].extend(r.token_ids.token_ids)
        dones = [r for r in responses if r.HasField("done")]
        assert sorted(r.choice_index for r in dones) == [0, 1, 2]
        assert all(d.done.usage.completion_tokens == 8 == len(ids[d.choice_index]) for d in dones)
        return {k: tuple(v) for k, v in ids.items()}

    first = sample()
    assert len(set(first.values())) == 3
    assert sample() == first


def test_prompt_logprobs_score_the_prompt_as_generation_did(
    stub: inference_pb2_grpc.InferenceServiceStub,
) -> None:
    prompt = [200006, 1428, 200008, 12194, 200007, 200006, 173781]
    first = list(
        stub.Generate(
            pb.GenerateRequest(prompt_token_ids=prompt, max_tokens=1, temperature=0.0, logprobs=True),
            timeout=60,
        )
    )
    sampled = next(t for r in first if r.HasField("token_ids") for t in r.token_ids.logprobs)
    scored = list(
        stub.Generate(
            pb.GenerateRequest(prompt_token_ids=[*prompt, sampled.token_id], max_tokens=1, prompt_logprobs=2),
            timeout=60,
        )
    )
    tokens = next(r.prompt_logprobs.tokens for r in scored if r.HasField("prompt_logprobs"))
    assert [t.token_id for t in tokens] == [*prompt, sampled.token_id]
    assert tokens[0].logprob == 0 and not tokens[0].top_logprobs
    assert tokens[-1].logprob == pytest.approx(sampled.logprob, abs=1e-2)
    assert all(len(t.top_logprobs) == 2 for t in tokens[1:])
    with pytest.raises(grpc.RpcError) as caught:
        list(stub.Generate(pb.GenerateRequest(messages=USER_HI, prompt_logprobs=1), timeout=30))
    assert error_info(caught.value).metadata["param"] == "prompt_logprobs"
