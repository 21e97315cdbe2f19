"""The one mapping from failures (gRPC statuses, bad requests) to OpenAI-shaped HTTP errors."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2
from pydantic import BaseModel

ERROR_INFO_DOMAIN = "gptoss.v1"
_DETAILS_KEY = "grpc-status-details-bin"


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

    def body(self) -> dict[str, Any]:
        """The OpenAI error body, also used as the payload of an in-stream SSE error event."""
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}


def invalid_request(message: str, param: str | None = None, code: str | None = None) -> GatewayError:
    """A 400 for a request the gateway itself refuses (unsupported or inconsistent parameters)."""
    return GatewayError(400, message, param=param, code=code)


def _error_info(trailing: Iterable[tuple[str, str | bytes]] | None) -> error_details_pb2.ErrorInfo | None:
    """The service's google.rpc.ErrorInfo, if it sent one; anything undecodable is ignored."""
    for key, value in trailing or ():
        if key != _DETAILS_KEY or not isinstance(value, bytes):
            continue
        try:
            status = status_pb2.Status.FromString(value)
        except Exception:
            return None
        for detail in status.details:
            info = error_details_pb2.ErrorInfo()
            if detail.Is(info.DESCRIPTOR) and detail.Unpack(info):
                return info
    return None


def _retry_after(info: error_details_pb2.ErrorInfo | None, default: int | None) -> int | None:
    raw = info.metadata.get("retry_after_s") if info is not None else None
    try:
        seconds = float(raw) if raw is not None else None
    except ValueError:
        seconds = None
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


def from_grpc(error: grpc.aio.AioRpcError) -> GatewayError:
    """Map a failed gRPC call to the HTTP error the caller sees.

    The service's ErrorInfo reason becomes the OpenAI `code` (so `context_length_exceeded`
    survives), its `param` metadata the `param`, and `retry_after_s` the Retry-After header.
    """
    code = error.code()
    info = _error_info(error.trailing_metadata())  # type: ignore[arg-type]
    status, err_type, default_code = _STATUS_MAP.get(code, (500, "server_error", "internal_error"))
    reason = (
        info.reason.lower() if info is not None and info.domain == ERROR_INFO_DOMAIN and info.reason else None
    )
    if reason == "invalid_request":
        reason = None  # OpenAI leaves `code` empty for plain validation errors.
    message = error.details() or code.name.lower()
    param = (info.metadata.get("param") or None) if info is not None else None
    if code == grpc.StatusCode.NOT_FOUND and param is None:
        param = "model"
    default_retry = 1 if status in (429, 503) else None
    return GatewayError(
        status,
        message,
        type=err_type,
        param=param,
        code=reason or default_code,
        retry_after=_retry_after(info, default_retry),
    )


def internal_error(message: str = "internal error in the gateway") -> GatewayError:
    return GatewayError(500, message, type="server_error", code="internal_error")
