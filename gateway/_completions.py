"""`POST /v1/completions` (legacy): one prompt, text or token ids, continued raw (no Harmony:
the caller owns the format), whole or streamed; and `POST /v1/tokenize`, `/v1/detokenize`."""

from __future__ import annotations

import time
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from gptoss import Done, Event, GenerateOptions, GptossError
from pydantic import BaseModel, ConfigDict, Field

from gateway._backend import CallMetadata
from gateway._completions_fold import TextChoices
from gateway._completions_schema import CompletionRequest, TokenId
from gateway._errors import invalid_request
from gateway._generate import Generation
from gateway._translate_chat import Json, logit_bias_ids
from gateway._translate_common import new_id

ROUTE = "/v1/completions"


class TokenizeBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: str | None = None
    prompt: str | None = None
    messages: list[object] | None = None
    add_special_tokens: bool = True


class DetokenizeBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: str | None = None
    tokens: list[TokenId] = Field(max_length=1 << 20)


def _refuse_unsupported(body: CompletionRequest) -> None:
    if body.suffix:
        raise invalid_request("suffix (fill-in-the-middle) is not supported", "suffix")
    if body.best_of is not None and body.best_of > 1:
        raise invalid_request("best_of > 1 is not supported; use n", "best_of")
    if body.stream_options is not None and not body.stream:
        raise invalid_request("stream_options is only allowed with stream: true", "stream_options")


def _one_prompt(body: CompletionRequest) -> str | list[int]:
    prompt = body.prompt
    if isinstance(prompt, list) and prompt and isinstance(prompt[0], str | list):
        if len(prompt) != 1:
            raise invalid_request("send one prompt per request (use n for several completions)", "prompt")
        return prompt[0]
    if isinstance(prompt, list) and not prompt:
        raise invalid_request("prompt must not be empty", "prompt")
    return prompt  # type: ignore[return-value]


def _check_text(text: str, param: str) -> None:
    """Lone surrogates (valid JSON escapes) cannot travel in a protobuf string: a 400, not a 500."""
    try:
        text.encode()
    except UnicodeEncodeError as exc:
        raise invalid_request(f"{param} is not valid Unicode: {exc.reason}", param) from None


def _metadata(request: Request) -> CallMetadata:
    call = request.state.call
    return CallMetadata.of(call.request_id, call.metadata())


async def completions(gen: Generation, request: Request, body: CompletionRequest) -> Response:
    _refuse_unsupported(body)
    prompt = _one_prompt(body)
    _check_text(body.model, "model")
    if isinstance(prompt, str):
        _check_text(prompt, "prompt")
    await gen.backend.require_started()
    client, metadata = gen.backend.client, _metadata(request).all
    try:
        ids = (
            await client.tokenize(prompt, model=body.model, metadata=metadata)
            if isinstance(prompt, str)
            else prompt
        )
        echoed = (
            ""
            if not body.echo
            else prompt
            if isinstance(prompt, str)
            else await client.detokenize(ids, metadata=metadata)
        )
    except GptossError as err:
        raise gen.http_error(err) from None
    if not ids:
        raise invalid_request("prompt must not be empty", "prompt")
    options = GenerateOptions(
        prompt_token_ids=ids,
        max_tokens=body.max_tokens,
        temperature=body.temperature,
        top_p=body.top_p,
        top_k=body.top_k,
        min_p=body.min_p,
        seed=body.seed,
        stop=body.stop,
        presence_penalty=body.presence_penalty,
        frequency_penalty=body.frequency_penalty,
        logit_bias=logit_bias_ids(body.logit_bias),
        n=body.n,
        model=body.model,
        ignore_eos=body.ignore_eos,
        # Always: the token bytes (the text) come with the sampled token's logprob.
        logprobs=True,
        top_logprobs=body.logprobs or 0,
        # echo + logprobs scores the prompt too (lm-evaluation-harness's loglikelihood).
        prompt_logprobs=body.logprobs if body.echo and body.logprobs is not None else None,
    )
    running = await gen._start(options, request.state.call, ROUTE, stream=bool(body.stream))
    fold = TextChoices(body.n or 1, body.logprobs is not None, echoed)
    base: Json = {
        "id": new_id("cmpl-"),
        "object": "text_completion",
        "created": int(time.time()),
        "model": body.model,
    }
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)

        def on_event(event: Event) -> list[Json]:
            delta = fold.on_event(event)
            chunks: list[Json] = []
            if delta is not None and (delta["text"] or delta["finish_reason"] or delta["logprobs"]):
                chunks.append({**base, "choices": [delta]})
            if isinstance(event, Done) and fold.all_done and include_usage:
                chunks.append({**base, "choices": [], "usage": fold.usage()})
            return chunks

        start = [{**base, "choices": [chunk]} for chunk in fold.start_chunks()]
        return gen._stream(ROUTE, running, start, on_event, named=False)
    await gen._fold(request, ROUTE, running, fold.on_event)
    return JSONResponse({**base, "choices": fold.whole(), "usage": fold.usage()})


def add_routes(
    app: FastAPI, generation: Callable[[], Generation], responses: dict[int | str, dict[str, object]]
) -> None:
    @app.post(ROUTE, tags=["openai"], response_model=None, responses=responses)
    async def legacy_completions(request: Request, body: CompletionRequest) -> Response:
        """Legacy completions: the prompt is continued raw (no Harmony rendering)."""
        return await completions(generation(), request, body)

    @app.post("/v1/tokenize", tags=["vllm"], responses=responses)
    @app.post("/tokenize", tags=["vllm"], include_in_schema=False)
    async def tokenize(request: Request, body: TokenizeBody) -> Json:
        """vLLM's shape: `prompt` text -> `tokens` (special-token text encodes as such)."""
        if body.messages is not None:
            raise invalid_request("tokenize takes `prompt` text; chat messages are not supported", "messages")
        if body.prompt is None:
            raise invalid_request("Missing required parameter: 'prompt'.", "prompt")
        _check_text(body.prompt, "prompt")
        _check_text(body.model or "", "model")
        gen = generation()
        await gen.backend.require_started()
        try:
            tokens = await gen.backend.client.tokenize(
                body.prompt, model=body.model or "", metadata=_metadata(request).all
            )
            info = await gen.backend.model_info(_metadata(request))
        except GptossError as err:
            raise gen.http_error(err) from None
        return {
            "count": len(tokens),
            "max_model_len": info.max_context_length,
            "tokens": tokens,
            "token_strs": None,
        }

    @app.post("/v1/detokenize", tags=["vllm"], responses=responses)
    @app.post("/detokenize", tags=["vllm"], include_in_schema=False)
    async def detokenize(request: Request, body: DetokenizeBody) -> Json:
        """vLLM's shape: `tokens` -> `prompt` text."""
        _check_text(body.model or "", "model")
        gen = generation()
        await gen.backend.require_started()
        try:
            text = await gen.backend.client.detokenize(
                body.tokens, model=body.model or "", metadata=_metadata(request).all
            )
        except GptossError as err:
            raise gen.http_error(err) from None
        return {"prompt": text}
