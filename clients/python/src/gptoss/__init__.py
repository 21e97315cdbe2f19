"""gptoss: client library and generated stubs for the gptoss.v1 inference service.

    from gptoss import Client
    with Client("127.0.0.1:50051") as client:
        result = client.complete(messages=[{"role": "user", "content": "Hi"}], max_tokens=64)
        print(result.content, result.usage)

Generated stubs live in `gptoss.v1` (inference_pb2, inference_pb2_grpc).
"""

from gptoss.aio import AsyncClient, AsyncEventStream
from gptoss.build import GenerateOptions, build_count_tokens_request, build_generate_request
from gptoss.client import Client, EventStream
from gptoss.connection import DEFAULT_TARGET, NO_RETRY, SERVICE_NAME, RetryPolicy, TlsConfig
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
    UnavailableError,
)
from gptoss.events import (
    ContentDelta,
    Done,
    Event,
    FinishReason,
    ReasoningDelta,
    Timings,
    TokenIds,
    ToolCallDelta,
    ToolCallDone,
    Usage,
)
from gptoss.info import ModelInfo, ServingStatus, TokenCount
from gptoss.result import Completion, ToolCall

__all__ = [
    "DEFAULT_TARGET",
    "NO_RETRY",
    "SERVICE_NAME",
    "AsyncClient",
    "AsyncEventStream",
    "AuthenticationError",
    "Client",
    "Completion",
    "ContentDelta",
    "ContextLengthExceededError",
    "DeadlineExceededError",
    "Done",
    "Event",
    "EventStream",
    "FinishReason",
    "GenerateOptions",
    "GptossError",
    "InvalidRequestError",
    "ModelInfo",
    "NotFoundError",
    "OverloadedError",
    "PermissionDeniedError",
    "ReasoningDelta",
    "RequestCancelledError",
    "RetryPolicy",
    "ServerError",
    "ServingStatus",
    "Timings",
    "TlsConfig",
    "TokenCount",
    "TokenIds",
    "ToolCall",
    "ToolCallDelta",
    "ToolCallDone",
    "UnavailableError",
    "Usage",
    "build_count_tokens_request",
    "build_generate_request",
]
