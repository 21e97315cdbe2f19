"""gptoss: client library and generated stubs for the gptoss.v1 inference service.

    from gptoss import Client
    with Client("127.0.0.1:50051") as client:
        result = client.complete(messages=[{"role": "user", "content": "Hi"}], max_tokens=64)
        print(result.content, result.usage)

        # Structured output: the answer is JSON valid under the schema (a dict or a pydantic model).
        fmt = json_schema("city", {"type": "object", "properties": {"name": {"type": "string"}}})
        result = client.complete(messages=[...], response_format=fmt, max_reasoning_tokens=256)

Generated stubs live in `gptoss.v1` (inference_pb2, inference_pb2_grpc).
"""

from gptoss.aio import AsyncClient, AsyncEventStream
from gptoss.build import GenerateOptions, build_count_tokens_request, build_generate_request
from gptoss.calls import CallOptions, CountTokensCall, GenerateCall
from gptoss.client import Client, EventStream
from gptoss.connection import (
    DEFAULT_TARGET,
    NO_RETRY,
    SERVICE_NAME,
    ClientOptions,
    RetryPolicy,
    TlsConfig,
)
from gptoss.contract import READINESS_SERVICE
from gptoss.errors import (
    AuthenticationError,
    ContextLengthExceededError,
    DeadlineExceededError,
    GptossError,
    InvalidRequestError,
    NotFoundError,
    OverloadedError,
    PermissionDeniedError,
    RequestCancelledError,
    ServerError,
    StatusDetails,
    UnavailableError,
    decode_status_details,
    from_rpc_error,
)
from gptoss.events import (
    ContentDelta,
    Done,
    Event,
    FinishReason,
    PromptLogprobs,
    ReasoningDelta,
    Timings,
    TokenIds,
    TokenLogprob,
    ToolCallDelta,
    ToolCallDone,
    TopLogprob,
    Usage,
)
from gptoss.formats import ResponseFormatLike, build_response_format, json_object, json_schema
from gptoss.info import ModelInfo, ServingStatus, TokenCount
from gptoss.result import (
    ChoicesBuilder,
    Completion,
    CompletionBuilder,
    ToolCall,
    total_usage,
    unsent_arguments,
)

__all__ = [
    "DEFAULT_TARGET",
    "NO_RETRY",
    "READINESS_SERVICE",
    "SERVICE_NAME",
    "AsyncClient",
    "AsyncEventStream",
    "AuthenticationError",
    "CallOptions",
    "ChoicesBuilder",
    "Client",
    "ClientOptions",
    "Completion",
    "CompletionBuilder",
    "ContentDelta",
    "ContextLengthExceededError",
    "CountTokensCall",
    "DeadlineExceededError",
    "Done",
    "Event",
    "EventStream",
    "FinishReason",
    "GenerateCall",
    "GenerateOptions",
    "GptossError",
    "InvalidRequestError",
    "ModelInfo",
    "NotFoundError",
    "OverloadedError",
    "PermissionDeniedError",
    "PromptLogprobs",
    "ReasoningDelta",
    "RequestCancelledError",
    "ResponseFormatLike",
    "RetryPolicy",
    "ServerError",
    "ServingStatus",
    "StatusDetails",
    "Timings",
    "TlsConfig",
    "TokenCount",
    "TokenIds",
    "TokenLogprob",
    "ToolCall",
    "ToolCallDelta",
    "ToolCallDone",
    "TopLogprob",
    "UnavailableError",
    "Usage",
    "build_count_tokens_request",
    "build_generate_request",
    "build_response_format",
    "decode_status_details",
    "from_rpc_error",
    "json_object",
    "json_schema",
    "total_usage",
    "unsent_arguments",
]
