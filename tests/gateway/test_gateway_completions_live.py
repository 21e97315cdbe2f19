"""Legacy completions, tokenize and detokenize through the OpenAI SDK / HTTP, on the real engine."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.gateway.gateway_thread import GatewayThread

pytestmark = pytest.mark.engine
PROMPT = "<|start|>user<|message|>Say hi.<|end|><|start|>assistant"


def test_completion_of_text_and_of_token_ids(
    client: openai.OpenAI, model_id: str, live_gateway: GatewayThread
) -> None:
    answer = client.completions.create(model=model_id, prompt=PROMPT, max_tokens=8, seed=1, temperature=1.0)
    assert answer.object == "text_completion" and len(answer.choices) == 1
    choice = answer.choices[0]
    assert choice.finish_reason in ("stop", "length") and choice.logprobs is None
    assert answer.usage is not None and 1 <= answer.usage.completion_tokens <= 8
    with httpx.Client(base_url=live_gateway.url) as http:
        tokens = http.post("/v1/tokenize", json={"model": model_id, "prompt": PROMPT}).json()
    assert tokens["count"] == len(tokens["tokens"]) == answer.usage.prompt_tokens
    again = client.completions.create(
        model=model_id, prompt=tokens["tokens"], max_tokens=8, seed=1, temperature=1.0
    )
    assert again.choices[0].text == choice.text  # the same prompt, the same seed


def test_completion_logprobs_and_echo(client: openai.OpenAI, model_id: str) -> None:
    answer = client.completions.create(model=model_id, prompt=PROMPT, max_tokens=6, logprobs=3, seed=2)
    lp = answer.choices[0].logprobs
    assert lp is not None and lp.tokens is not None and lp.token_logprobs is not None
    assert len(lp.tokens) == len(lp.token_logprobs) == answer.usage.completion_tokens  # type: ignore[union-attr]
    assert all(v <= 0 for v in lp.token_logprobs)
    assert lp.top_logprobs is not None and all(len(top) <= 3 for top in lp.top_logprobs)
    echoed = client.completions.create(model=model_id, prompt=PROMPT, max_tokens=4, echo=True, seed=2)
    assert echoed.choices[0].text.startswith(PROMPT)
    # echo + logprobs (lm-evaluation-harness loglikelihood): the prompt's tokens are scored too.
    scored = client.completions.create(model=model_id, prompt=PROMPT, max_tokens=1, echo=True, logprobs=2)
    slp = scored.choices[0].logprobs
    assert slp is not None and slp.tokens is not None and slp.token_logprobs is not None
    prompt_tokens = scored.usage.prompt_tokens  # type: ignore[union-attr]
    assert len(slp.tokens) == prompt_tokens + 1 and "".join(slp.tokens[:prompt_tokens]) == PROMPT
    assert slp.token_logprobs[0] is None and all(v <= 0 for v in slp.token_logprobs[1:])
    assert slp.text_offset is not None and slp.text_offset[0] == 0 and slp.text_offset[-1] == len(PROMPT)
    streamed = client.completions.create(
        model=model_id, prompt=PROMPT, max_tokens=2, echo=True, logprobs=1, stream=True
    )
    chunks = list(streamed)
    assert chunks[0].choices[0].text == PROMPT and chunks[0].choices[0].logprobs is not None


def test_completion_stream_with_n(client: openai.OpenAI, model_id: str) -> None:
    texts: dict[int, str] = {}
    finished = set()
    usage = None
    for chunk in client.completions.create(
        model=model_id,
        prompt=PROMPT,
        max_tokens=6,
        n=2,
        seed=3,
        temperature=1.0,
        stream=True,
        stream_options={"include_usage": True},
    ):
        usage = chunk.usage or usage
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + choice.text
            if choice.finish_reason:
                finished.add(choice.index)
    assert finished == {0, 1} and usage is not None and 2 <= usage.completion_tokens <= 12


def test_tokenize_detokenize_and_errors(live_gateway: GatewayThread, model_id: str) -> None:
    with httpx.Client(base_url=live_gateway.url) as http:
        tokens = http.post("/tokenize", json={"prompt": "Hello café"}).json()["tokens"]
        assert http.post("/v1/detokenize", json={"tokens": tokens}).json() == {"prompt": "Hello café"}
        bad = http.post("/v1/detokenize", json={"tokens": [-5]})
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "token_ids"
        chat = http.post("/v1/tokenize", json={"messages": [{"role": "user", "content": "x"}]})
        assert chat.status_code == 400 and chat.json()["error"]["param"] == "messages"
        for body, param in (
            ({"suffix": "x"}, "suffix"),
            ({"prompt": ["a", "b"]}, "prompt"),
            ({"logprobs": 21}, "logprobs"),
            ({"n": 0}, "n"),
        ):
            answer = http.post("/v1/completions", json={"model": model_id, "prompt": "hi", **body})
            assert answer.status_code == 400 and answer.json()["error"]["param"] == param, body
