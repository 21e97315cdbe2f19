"""Logprobs on the stream, pinned token sequences (scripted engine): which tokens they cover and how
their texts line up with the deltas (split UTF-8, stop strings, reasoning, tool arguments, raw)."""

from __future__ import annotations

import grpc
import pytest
from gptoss.v1 import inference_pb2 as pb

from service.harmony import tokens as tk
from tests.integration.test_generate_live import assert_well_formed, error_info
from tests.integration.test_service_scripted import USER, ServerFactory, stub_for, toks


def byte_token(value: bytes) -> int:
    return next(t for t in range(1024) if tk.token_bytes(t) == value)


# "é" is two bytes; these byte-level tokens split it across two tokens.
E_FIRST, E_SECOND = byte_token(b"\xc3"), byte_token(b"\xa9")


def run(server_factory: ServerFactory, steps: list[list[int]], **fields: object) -> list[pb.GenerateResponse]:
    server = server_factory(steps)
    channel, stub = stub_for(server)
    with channel:
        request = pb.GenerateRequest(**{"messages": USER, "logprobs": True, "top_logprobs": 2, **fields})  # type: ignore[arg-type]
        return list(stub.Generate(request, timeout=10))


def tokens_of(responses: list[pb.GenerateResponse], kind: str) -> list[pb.TokenLogprob]:
    return [t for r in responses if r.WhichOneof("event") == kind for t in getattr(r, kind).logprobs]


def text_of(responses: list[pb.GenerateResponse], kind: str) -> str:
    return "".join(getattr(r, kind).text for r in responses if r.WhichOneof("event") == kind)


def test_content_tokens_concatenate_to_content_with_a_split_character(scripted_server: ServerFactory) -> None:
    steps = [
        toks("<|channel|>analysis<|message|>think<|end|><|start|>assistant<|channel|>final<|message|>caf"),
        [E_FIRST],
        [E_SECOND, *toks(" au lait")],
        toks("<|return|>"),
    ]
    responses = run(scripted_server, steps)
    assert_well_formed(responses)
    content = tokens_of(responses, "content")
    assert text_of(responses, "content") == "café au lait"
    assert "".join(t.text for t in content) == "café au lait"
    assert b"".join(t.token_bytes for t in content) == "café au lait".encode()
    split = [t for t in content if t.token_bytes == b"\xc3"]
    assert split and split[0].text == ""  # the first half adds no text; the second carries "é"
    reasoning = tokens_of(responses, "reasoning")
    assert "".join(t.text for t in reasoning) == text_of(responses, "reasoning") == "think"
    # Never a Harmony header or special token.
    assert all(not tk.is_special(t.token_id) for t in content + reasoning)
    for t in content + reasoning:
        assert t.logprob == pytest.approx(-(t.token_id % 10) / 10)
        assert [a.token_id for a in t.top_logprobs] == [t.token_id, t.token_id + 1]
        assert t.top_logprobs[0].token_bytes == t.token_bytes


def test_a_stop_string_cuts_the_token_texts_like_the_content(scripted_server: ServerFactory) -> None:
    steps = [[t] for t in toks("<|channel|>final<|message|>one twoSTOPthree<|return|>")]
    responses = run(scripted_server, steps, stop=["STOP"])
    assert responses[-1].done.finish_reason == pb.FINISH_REASON_STOP
    content = text_of(responses, "content")
    assert content == "one two"
    assert "".join(t.text for t in tokens_of(responses, "content")) == content


def test_tool_arguments_carry_their_tokens(scripted_server: ServerFactory) -> None:
    steps = [
        toks(
            '<|channel|>commentary to=functions.get_weather<|constrain|>json<|message|>{"city": "Paris"}<|call|>'
        )
    ]
    responses = run(scripted_server, steps, tools=[pb.Tool(name="get_weather")])
    tool_tokens = [t for r in responses if r.HasField("tool_call") for t in r.tool_call.logprobs]
    assert "".join(t.text for t in tool_tokens) == '{"city": "Paris"}'


def test_raw_mode_token_ids_carry_one_logprob_each(scripted_server: ServerFactory) -> None:
    steps = [toks("hello world, again")]
    responses = run(scripted_server, steps, messages=[], prompt_token_ids=[1, 2, 3], max_tokens=4)
    ids = [i for r in responses if r.HasField("token_ids") for i in r.token_ids.token_ids]
    logprobs = [t for r in responses if r.HasField("token_ids") for t in r.token_ids.logprobs]
    assert [t.token_id for t in logprobs] == ids and len(ids) == 4


def test_no_logprobs_unless_asked(scripted_server: ServerFactory) -> None:
    steps = [toks("<|channel|>final<|message|>hi there<|return|>")]
    responses = run(scripted_server, steps, logprobs=False, top_logprobs=0)
    assert text_of(responses, "content") == "hi there" and not tokens_of(responses, "content")


def test_bad_logprob_settings_name_the_param(scripted_server: ServerFactory) -> None:
    server = scripted_server([toks("x")])
    channel, stub = stub_for(server)
    with channel:
        for fields in ({"logprobs": True, "top_logprobs": 21}, {"top_logprobs": 3}, {"top_logprobs": -1}):
            try:
                list(stub.Generate(pb.GenerateRequest(messages=USER, **fields), timeout=10))  # type: ignore[arg-type]
            except grpc.RpcError as err:
                assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
                assert error_info(err).metadata["param"] == "top_logprobs"
            else:
                raise AssertionError(f"{fields} was accepted")
