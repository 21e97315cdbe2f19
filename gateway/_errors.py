"""The one mapping from failures (the client's typed errors, bad requests) to OpenAI-shaped HTTP errors."""

from __future__ import annotations

import math

import grpc
from gptoss.contract import ERROR_DOMAIN
from gptoss.errors import GptossError
from pydantic import BaseModel


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorBody(BaseModel):
    """The OpenAI error body, for the OpenAPI schema."""

    error: ErrorDetail


class GatewayError(Exception):
    """An error the gateway answers with; carries everything the OpenAI error body and headers need."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.retry_after = retry_after

    def body(self) -> dict[str, dict[str, str | None]]:
        """The OpenAI error body, also used as the payload of an in-stream SSE error event."""
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}


def invalid_request(message: str, param: str | None = None, code: str | None = None) -> GatewayError:
    """A 400 for a request the gateway itself refuses (unsupported or inconsistent parameters)."""
    return GatewayError(400, message, param=param, code=code)


def internal_error(message: str = "internal error in the gateway") -> GatewayError:
    return GatewayError(500, message, type="server_error", code="internal_error")


def engine_starting() -> GatewayError:
    """No replica has reported SERVING yet (the engine is loading): a clear, retryable state."""
    return GatewayError(
        503,
        "The inference engine is starting; retry shortly.",
        type="server_error",
        code="engine_starting",
        retry_after=1,
    )


def store_unavailable(detail: str) -> GatewayError:
    """The response store's database cannot be reached: nothing was generated or stored."""
    return GatewayError(
        503,
        f"The response store is unavailable, so nothing was generated or stored; retry shortly ({detail}).",
        type="server_error",
        code="store_unavailable",
        retry_after=1,
    )


def _retry_after(seconds: float | None, default: int | None) -> int | None:
    if seconds is None or not math.isfinite(seconds):
        return default
    return max(1, math.ceil(seconds))


# gRPC code -> (HTTP status, OpenAI error type, default code).
_STATUS_MAP: dict[grpc.StatusCode, tuple[int, str, str | None]] = {
    grpc.StatusCode.INVALID_ARGUMENT: (400, "invalid_request_error", None),
    grpc.StatusCode.OUT_OF_RANGE: (400, "invalid_request_error", None),
    grpc.StatusCode.FAILED_PRECONDITION: (400, "invalid_request_error", None),
    grpc.StatusCode.UNAUTHENTICATED: (401, "invalid_request_error", "invalid_api_key"),
    grpc.StatusCode.PERMISSION_DENIED: (403, "invalid_request_error", "permission_denied"),
    grpc.StatusCode.NOT_FOUND: (404, "invalid_request_error", "model_not_found"),
    grpc.StatusCode.RESOURCE_EXHAUSTED: (429, "rate_limit_error", "overloaded"),
    grpc.StatusCode.UNAVAILABLE: (503, "server_error", "service_unavailable"),
    grpc.StatusCode.DEADLINE_EXCEEDED: (504, "timeout_error", "timeout"),
    grpc.StatusCode.CANCELLED: (503, "server_error", "cancelled"),
    grpc.StatusCode.UNIMPLEMENTED: (501, "server_error", "not_implemented"),
}


# The service names the response format in chat's shape; a Responses caller sent `text.format`.
_RESPONSES_FORMAT_PARAMS = (
    ("response_format.json_schema", "text.format"),
    ("response_format", "text.format"),
)


def responses_param(param: str | None) -> str | None:
    """The Responses API's name of a param the service named (`response_format.json_schema.schema`
    -> `text.format.schema`); other params are spelled the same in both APIs."""
    for service, responses in _RESPONSES_FORMAT_PARAMS:
        if param is not None and (param == service or param.startswith(service + ".")):
            return responses + param[len(service) :]
    return param


def from_client_error(error: GptossError, *, responses_api: bool = False) -> GatewayError:
    """Map a failed call (the client's typed error) to the HTTP error the caller sees.

    The service's ErrorInfo reason becomes the OpenAI `code` (so `context_length_exceeded`
    survives), its `param` the `param`, and `retry_after_s` the Retry-After header.
    """
    status, err_type, default_code = _STATUS_MAP.get(error.code, (500, "server_error", "internal_error"))
    reason = error.reason.lower() if error.domain == ERROR_DOMAIN and error.reason else None
    if reason == "invalid_request":
        reason = None  # OpenAI leaves `code` empty for plain validation errors.
    param = error.param or None
    if responses_api:
        param = responses_param(param)
    if error.code == grpc.StatusCode.NOT_FOUND and param is None:
        param = "model"
    default_retry = 1 if status in (429, 503) else None
    return GatewayError(
        status,
        error.message or error.code.name.lower(),
        type=err_type,
        param=param,
        code=reason or default_code,
        retry_after=_retry_after(error.retry_after_s, default_retry),
    )
