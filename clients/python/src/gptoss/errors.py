"""Typed errors: one exception class per failure a caller handles differently.

The service attaches a ``google.rpc.Status`` with a ``google.rpc.ErrorInfo`` (domain ``gptoss.v1``)
to every error; its ``reason`` is more precise than the status code (``CONTEXT_LENGTH_EXCEEDED`` vs
other ``INVALID_ARGUMENT``), so the class is chosen by reason first, then by code.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import grpc
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2

ERROR_DOMAIN = "gptoss.v1"
STATUS_DETAILS_KEY = "grpc-status-details-bin"


class GptossError(Exception):
    """Base of every error the client raises for a failed RPC."""

    def __init__(
        self,
        message: str,
        *,
        code: grpc.StatusCode = grpc.StatusCode.UNKNOWN,
        reason: str | None = None,
        domain: str | None = None,
        metadata: Mapping[str, str] | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.reason = reason
        self.domain = domain
        self.metadata: dict[str, str] = dict(metadata or {})
        self.request_id = request_id

    @property
    def param(self) -> str | None:
        """The request field at fault, when the server named one."""
        return self.metadata.get("param")

    @property
    def retry_after_s(self) -> float | None:
        """The server's hint for when a retry may succeed, in seconds."""
        raw = self.metadata.get("retry_after_s")
        try:
            return float(raw) if raw is not None else None
        except ValueError:
            return None

    def __str__(self) -> str:
        parts = [f"{self.code.name}: {self.message}" if self.message else self.code.name]
        if self.reason:
            parts.append(f"reason={self.reason}")
        if self.param:
            parts.append(f"param={self.param}")
        return " ".join(parts)


class InvalidRequestError(GptossError):
    """INVALID_ARGUMENT / OUT_OF_RANGE: the request itself is wrong; retrying it cannot help."""


class ContextLengthExceededError(InvalidRequestError):
    """The prompt (plus max_tokens) does not fit the model's context window."""


class NotFoundError(GptossError):
    """NOT_FOUND: e.g. a model id that this server does not serve."""


class AuthenticationError(GptossError):
    """UNAUTHENTICATED: missing or wrong API key."""


class PermissionDeniedError(GptossError):
    """PERMISSION_DENIED: the key is valid but not allowed to do this."""


class OverloadedError(GptossError):
    """RESOURCE_EXHAUSTED: too many concurrent requests; back off (see retry_after_s)."""


class UnavailableError(GptossError):
    """UNAVAILABLE: server down, starting, draining, or the connection broke."""


class DeadlineExceededError(GptossError):
    """DEADLINE_EXCEEDED: the per-call timeout ran out."""


class RequestCancelledError(GptossError):
    """CANCELLED: the call was cancelled (by this client or the server)."""


class ServerError(GptossError):
    """INTERNAL / UNKNOWN / UNIMPLEMENTED / DATA_LOSS and other server-side failures."""


_BY_REASON: dict[str, type[GptossError]] = {
    "CONTEXT_LENGTH_EXCEEDED": ContextLengthExceededError,
    "INVALID_REQUEST": InvalidRequestError,
    "MODEL_NOT_FOUND": NotFoundError,
    "OVERLOADED": OverloadedError,
    "ENGINE_STARTING": UnavailableError,
    "DRAINING": UnavailableError,
    "INVALID_API_KEY": AuthenticationError,
}

_BY_CODE: dict[grpc.StatusCode, type[GptossError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidRequestError,
    grpc.StatusCode.OUT_OF_RANGE: InvalidRequestError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.UNAUTHENTICATED: AuthenticationError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: OverloadedError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
    grpc.StatusCode.CANCELLED: RequestCancelledError,
}


def _error_class(code: grpc.StatusCode, reason: str | None) -> type[GptossError]:
    by_code = _BY_CODE.get(code, ServerError)
    by_reason = _BY_REASON.get(reason or "")
    # A reason refines the code's class; it never turns e.g. UNAVAILABLE into an auth error.
    if by_reason is not None and issubclass(by_reason, by_code):
        return by_reason
    return by_code


def parse_error_info(trailing_metadata: Iterable[tuple[str, Any]] | None) -> tuple[str, str, dict[str, str]]:
    """Decode ``grpc-status-details-bin`` into (reason, domain, metadata); empty when absent or garbled."""
    for key, value in trailing_metadata or ():
        if key != STATUS_DETAILS_KEY or not isinstance(value, bytes | bytearray):
            continue
        status = status_pb2.Status()
        try:
            status.ParseFromString(bytes(value))
        except DecodeError:
            return "", "", {}
        for detail in status.details:
            info = error_details_pb2.ErrorInfo()
            if detail.Is(info.DESCRIPTOR) and detail.Unpack(info):
                return info.reason, info.domain, dict(info.metadata)
    return "", "", {}


def from_rpc_error(error: grpc.RpcError, *, request_id: str | None = None) -> GptossError:
    """Turn a grpc (or grpc.aio) RpcError into the matching typed error."""
    code_fn = getattr(error, "code", None)
    code = code_fn() if callable(code_fn) else None
    if not isinstance(code, grpc.StatusCode):
        code = grpc.StatusCode.UNKNOWN
    details_fn = getattr(error, "details", None)
    message = (details_fn() if callable(details_fn) else None) or ""
    trailers_fn = getattr(error, "trailing_metadata", None)
    trailers = trailers_fn() if callable(trailers_fn) else None
    reason, domain, metadata = parse_error_info(trailers)
    cls = _error_class(code, reason)
    return cls(
        str(message),
        code=code,
        reason=reason or None,
        domain=domain or None,
        metadata=metadata,
        request_id=request_id,
    )
