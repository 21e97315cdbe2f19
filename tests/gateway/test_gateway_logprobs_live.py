"""logprobs and logit_bias through the OpenAI SDK, gateway -> real service -> vLLM CPU engine."""

from __future__ import annotations

from typing import Any

import openai
import pytest

pytestmark = pytest.mark.engine

USER = [{"role": "user", "content": "Say hello."}]


def check_tokens(tokens: list[Any], content: str, k: int) -> None:
    assert "".join(t.token for t in tokens) == content
    for t in tokens:
        assert t.logprob <= 0
        assert len(t.top_logprobs) == k
        top = [a.logprob for a in t.top_logprobs]
        assert top == sorted(top, reverse=True)
        if t.logprob >= top[-1] + 1e-6:
            assert any(a.bytes == t.bytes and a.logprob == pytest.approx(t.logprob) for a in t.top_logprobs)


def test_chat_logprobs_whole(client: openai.OpenAI, model_id: str) -> None:
    answer = client.chat.completions.create(
        model=model_id,
        messages=USER,
        max_tokens=24,
        seed=3,
        logprobs=True,
        top_logprobs=3,  # type: ignore[arg-type]
    )
    choice = answer.choices[0]
    assert choice.logprobs is not None and choice.logprobs.content is not None
    check_tokens(choice.logprobs.content, choice.message.content or "", 3)
    plain = client.chat.completions.create(model=model_id, messages=USER, max_tokens=4)  # type: ignore[arg-type]
    assert plain.choices[0].logprobs is None


def test_chat_logprobs_streamed_line_up_with_the_content(client: openai.OpenAI, model_id: str) -> None:
    content, tokens = "", []
    stream = client.chat.completions.create(
        model=model_id,
        messages=USER,
        max_tokens=24,
        seed=3,
        logprobs=True,
        top_logprobs=2,
        stream=True,  # type: ignore[arg-type]
    )
    for chunk in stream:
        for choice in chunk.choices:
            content += choice.delta.content or ""
            if choice.logprobs is not None and choice.logprobs.content:
                tokens.extend(choice.logprobs.content)
    check_tokens(tokens, content, 2)


def test_responses_output_text_logprobs(client: openai.OpenAI, model_id: str) -> None:
    response = client.responses.create(
        model=model_id,
        input="Say hello.",
        max_output_tokens=24,
        include=["message.output_text.logprobs"],
        top_logprobs=2,
    )
    for item in response.output:
        if item.type == "message":
            for part in item.content:
                assert part.type == "output_text"
                check_tokens(part.logprobs or [], part.text, 2)


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"logprobs": True, "top_logprobs": 21}, "top_logprobs"),
        ({"n": 0}, "n"),
        ({"n": 129}, "n"),
        ({"logit_bias": {"5": 101}}, "logit_bias"),
        ({"logit_bias": {"999999": 1}}, "logit_bias"),
        ({"logit_bias": {"abc": 1}}, "logit_bias"),
    ],
)
def test_bad_values_are_400_naming_the_param(
    client: openai.OpenAI, model_id: str, fields: dict[str, Any], param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=model_id, messages=USER, max_tokens=2, **fields)  # type: ignore[arg-type]
    assert caught.value.param == param


def test_n_choices_whole(client: openai.OpenAI, model_id: str) -> None:
    one = client.chat.completions.create(model=model_id, messages=USER, max_tokens=12, seed=9)  # type: ignore[arg-type]
    answer = client.chat.completions.create(
        model=model_id,
        messages=USER,
        max_tokens=12,
        temperature=1.0,
        seed=9,
        n=3,  # type: ignore[arg-type]
    )
    assert [c.index for c in answer.choices] == [0, 1, 2]
    # (That the choices differ is checked on token ids, test_logprobs_live: the tiny random model
    # often spends 12 tokens in Harmony headers, leaving no text to compare.)
    assert all(c.finish_reason in ("stop", "length", "tool_calls") for c in answer.choices)
    assert answer.usage is not None and one.usage is not None
    assert answer.usage.prompt_tokens == one.usage.prompt_tokens  # the prompt once
    assert 3 <= answer.usage.completion_tokens <= 36
    assert answer.usage.total_tokens == answer.usage.prompt_tokens + answer.usage.completion_tokens


def test_n_choices_streamed_interleave_by_index(client: openai.OpenAI, model_id: str) -> None:
    stream = client.chat.completions.create(
        model=model_id,
        messages=USER,  # type: ignore[arg-type]
        max_tokens=12,
        temperature=1.0,
        seed=9,
        n=3,
        stream=True,
        stream_options={"include_usage": True},
    )
    texts = {0: "", 1: "", 2: ""}
    finished: dict[int, str] = {}
    usage = None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            assert choice.index not in finished  # nothing after a choice's finish
            extra = choice.delta.model_extra or {}
            texts[choice.index] += (extra.get("reasoning_content") or "") + (choice.delta.content or "")
            if choice.finish_reason is not None:
                finished[choice.index] = choice.finish_reason
    assert sorted(finished) == [0, 1, 2]
    assert usage is not None and 3 <= usage.completion_tokens <= 36
