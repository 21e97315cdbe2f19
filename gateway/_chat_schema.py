"""Pydantic models of the Chat Completions request: validation, and the OpenAPI schema clients see.

Unknown fields are ignored (as vLLM does), because OpenAI-compatible clients routinely send
vendor extras; fields that would change the answer and that we cannot honour are declared
here and refused with a 400 in the translation step, never silently dropped. Structured output
(`response_format`, tools' `strict`) is enforced by the service's constrained decoding.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from gateway._schema_limits import ToolSchema

INT64 = 2**63 - 1


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ContentPart(_Model):
    """A content part; only `text` parts are supported, others get a clear 400."""

    type: str
    text: str | None = None


Content = str | list[ContentPart]


class FunctionDefinition(_Model):
    name: str = Field(min_length=1)  # the service checks the pattern
    description: str | None = None
    parameters: ToolSchema | None = None
    strict: bool | None = None


class ChatTool(_Model):
    type: Literal["function"] = "function"
    function: FunctionDefinition


class ToolCallFunction(_Model):
    name: str = Field(min_length=1)
    arguments: str = ""


class ChatToolCall(_Model):
    id: str = Field(min_length=1)
    type: Literal["function"] = "function"
    function: ToolCallFunction


class SystemMessage(_Model):
    role: Literal["system"]
    content: Content
    name: str | None = None


class DeveloperMessage(_Model):
    role: Literal["developer"]
    content: Content
    name: str | None = None


class UserMessage(_Model):
    role: Literal["user"]
    content: Content
    name: str | None = None


class AssistantMessage(_Model):
    role: Literal["assistant"]
    content: Content | None = None
    # Both spellings are accepted, as both vLLM eras produced them.
    reasoning_content: str | None = None
    reasoning: str | None = None
    tool_calls: list[ChatToolCall] | None = None
    name: str | None = None
    refusal: str | None = None


class ToolMessage(_Model):
    role: Literal["tool"]
    content: Content
    tool_call_id: str = Field(min_length=1)
    name: str | None = None


ChatMessage = Annotated[
    SystemMessage | DeveloperMessage | UserMessage | AssistantMessage | ToolMessage,
    Field(discriminator="role"),
]


class NamedFunction(_Model):
    name: str = Field(min_length=1)


class NamedToolChoice(_Model):
    type: Literal["function"] = "function"
    function: NamedFunction


class StreamOptions(_Model):
    include_usage: bool | None = None


class JsonSchemaSpec(_Model):
    """Chat's `response_format.json_schema`; the service checks the name's pattern and the schema."""

    name: str = Field(min_length=1)
    description: str | None = None
    # `schema` would shadow BaseModel.schema; the alias keeps the caller's name in error params.
    json_schema: ToolSchema = Field(alias="schema")
    # Absent: enforced (see gptoss.formats); false: the schema is only shown to the model.
    strict: bool | None = None


class ResponseFormat(_Model):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaSpec | None = None


class ChatCompletionRequest(_Model):
    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    tools: list[ChatTool] | None = None
    tool_choice: Literal["auto", "none", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    reasoning_effort: Literal["low", "medium", "high"] | None = None
    max_tokens: int | None = Field(default=None, ge=1, le=2**31 - 1)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=2**31 - 1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    top_k: int | None = Field(default=None, ge=-1, le=2**31 - 1)
    min_p: float | None = Field(default=None, ge=0, le=1)
    # vLLM extension, kept for the same clients (benchmarks): generate exactly max_tokens.
    ignore_eos: bool = False
    seed: int | None = Field(default=None, ge=-INT64 - 1, le=INT64)
    stop: str | list[str] | None = None
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    n: int | None = Field(default=None, ge=1, le=128)
    response_format: ResponseFormat | None = None
    # Extension (OpenAI SDK: extra_body): most analysis tokens before the answer is forced.
    max_reasoning_tokens: int | None = Field(default=None, ge=0, le=2**31 - 1)
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    logit_bias: dict[str, float] | None = None
    user: str | None = None
    # Legacy function calling: declared so it is refused clearly instead of ignored.
    functions: list[dict[str, object]] | None = None
    function_call: str | dict[str, object] | None = None
