"""Pydantic model of the legacy Completions request (`POST /v1/completions`)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from gateway._chat_schema import INT64, StreamOptions

# A token id as the contract carries it (int32); the service checks it against the vocabulary.
TokenId = Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]


class CompletionRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1)
    # One prompt: text (encoded with the served model's encoding, special-token text included)
    # or token ids; a list of one prompt is accepted too.
    prompt: str | list[TokenId] | list[str] | list[list[TokenId]]
    max_tokens: int | None = Field(default=16, ge=1, le=2**31 - 1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    top_k: int | None = Field(default=None, ge=-1, le=2**31 - 1)
    min_p: float | None = Field(default=None, ge=0, le=1)
    seed: int | None = Field(default=None, ge=-INT64 - 1, le=INT64)
    stop: str | list[str] | None = None
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    logit_bias: dict[str, float] | None = None
    n: int | None = Field(default=None, ge=1, le=128)
    logprobs: int | None = Field(default=None, ge=0, le=20)
    echo: bool | None = False
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    ignore_eos: bool = False
    user: str | None = None
    # Declared so they are refused clearly.
    suffix: str | None = None
    best_of: int | None = None
