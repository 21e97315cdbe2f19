"""Pydantic models of the Responses API request (the subset gpt-oss serves), for validation and OpenAPI."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from gateway._chat_schema import INT64
from gateway._schema_limits import ToolSchema


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class InputPart(_Model):
    """input_text / output_text parts are read; other kinds (images, files) get a clear 400."""

    type: str
    text: str | None = None


class MessageItem(_Model):
    type: Literal["message"] = "message"
    role: Literal["user", "system", "developer", "assistant"]
    content: str | list[InputPart]
    id: str | None = None
    status: str | None = None


class FunctionCallItem(_Model):
    type: Literal["function_call"]
    call_id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    arguments: str = ""
    id: str | None = None
    status: str | None = None


class FunctionCallOutputItem(_Model):
    type: Literal["function_call_output"]
    call_id: str = Field(min_length=1)
    output: str | list[InputPart]
    id: str | None = None
    status: str | None = None


class ReasoningText(_Model):
    type: str = "reasoning_text"
    text: str


class ReasoningItem(_Model):
    type: Literal["reasoning"]
    id: str | None = None
    summary: list[ReasoningText] = Field(default_factory=list)
    content: list[ReasoningText] | None = None
    encrypted_content: str | None = None
    status: str | None = None


class OtherItem(_Model):
    """Item kinds we do not serve (item_reference, built-in tool calls): refused with a 400."""

    type: str


def _item_kind(value: object) -> str:
    kind = value.get("type", "message") if isinstance(value, dict) else getattr(value, "type", "message")
    return kind if kind in ("message", "function_call", "function_call_output", "reasoning") else "other"


InputItem = Annotated[
    Annotated[MessageItem, Tag("message")]
    | Annotated[FunctionCallItem, Tag("function_call")]
    | Annotated[FunctionCallOutputItem, Tag("function_call_output")]
    | Annotated[ReasoningItem, Tag("reasoning")]
    | Annotated[OtherItem, Tag("other")],
    Discriminator(_item_kind),
]


class FunctionTool(_Model):
    type: Literal["function"]
    name: str = Field(min_length=1)  # the service checks the pattern
    description: str | None = None
    parameters: ToolSchema | None = None
    strict: bool | None = None


class FunctionToolChoice(_Model):
    type: Literal["function"]
    name: str = Field(min_length=1)


class ReasoningConfig(_Model):
    effort: Literal["low", "medium", "high"] | None = None
    summary: str | None = None


class TextFormat(_Model):
    """`text.format`: the Responses API's flat json_schema shape (name and schema beside `type`)."""

    type: Literal["text", "json_object", "json_schema"]
    name: str | None = Field(default=None, min_length=1)
    description: str | None = None
    # `schema` would shadow BaseModel.schema; the alias keeps the caller's name in error params.
    json_schema: ToolSchema | None = Field(default=None, alias="schema")
    strict: bool | None = None


class TextConfig(_Model):
    format: TextFormat | None = None


class ResponsesRequest(_Model):
    model: str = Field(min_length=1)
    input: str | list[InputItem]
    instructions: str | None = None
    tools: list[FunctionTool] | None = None
    tool_choice: Literal["auto", "none", "required"] | FunctionToolChoice | None = None
    parallel_tool_calls: bool | None = None
    reasoning: ReasoningConfig | None = None
    max_output_tokens: int | None = Field(default=None, ge=1, le=2**31 - 1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    seed: int | None = Field(default=None, ge=-INT64 - 1, le=INT64)
    stream: bool | None = False
    metadata: dict[str, str] | None = None
    text: TextConfig | None = None
    # Extension (OpenAI SDK: extra_body): most analysis tokens before the answer is forced.
    max_reasoning_tokens: int | None = Field(default=None, ge=0, le=2**31 - 1)
    truncation: Literal["auto", "disabled"] | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    include: list[str] | None = None
    user: str | None = None
    store: bool | None = None
    # Declared so they are refused clearly: the gateway keeps no state between requests.
    previous_response_id: str | None = None
    conversation: str | dict[str, object] | None = None
    background: bool | None = None


LOGPROBS_INCLUDE = "message.output_text.logprobs"


def wants_logprobs(req: ResponsesRequest) -> bool:
    """`include: ["message.output_text.logprobs"]` (or a top_logprobs count) asks for logprobs."""
    return LOGPROBS_INCLUDE in (req.include or ()) or bool(req.top_logprobs)
