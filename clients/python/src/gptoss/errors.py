"""Typed errors: one exception class per failure a caller handles differently.

The service attaches a ``google.rpc.Status`` with a ``google.rpc.ErrorInfo`` (domain ``gptoss.v1``)
to every error; its ``reason`` is more precise than the status code (``CONTEXT_LENGTH_EXCEEDED`` vs
other ``INVALID_ARGUMENT``), so the class is chosen by reason first, then by code.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import grpc
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2

from gptoss.contract import ERROR_DOMAIN, STATUS_DETAILS_KEY

__all__ = [
    "ERROR_DOMAIN",
    "STATUS_DETAILS_KEY",
    "AuthenticationError",
    "ContextLengthExceededError",
    "DeadlineExceededError",
    "GptossError",
    "InvalidRequestError",
    "NotFoundError",
    "OverloadedError",
    "PermissionDeniedError",
    "RequestCancelledError",
    "ServerError",
    "StatusDetails",
    "UnavailableError",
    "decode_status_details",
    "error_class",
    "from_rpc_error",
    "parse_error_info",
]


class GptossError(Exception):
    """Base of every error the client raises for a failed RPC.

    `code` defaults to the class's own status, so e.g. `UnavailableError("not ready")` raised by the
    client itself (no RPC status behind it) still maps to UNAVAILABLE (the CLI's exit code, the
    gateway's HTTP status).
    """

    default_code: ClassVar[grpc.StatusCode] = grpc.StatusCode.UNKNOWN

    def __init__(
        self,
        message: str,
        *,
        code: grpc.StatusCode | None = None,
        reason: str | None = None,
        domain: str | None = None,
        metadata: Mapping[str, str] | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code if code is not None else self.default_code
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

    default_code = grpc.StatusCode.INVALID_ARGUMENT


class ContextLengthExceededError(InvalidRequestError):
    """The prompt (plus max_tokens) does not fit the model's context window."""


class NotFoundError(GptossError):
    """NOT_FOUND: e.g. a model id that this server does not serve."""

    default_code = grpc.StatusCode.NOT_FOUND


class AuthenticationError(GptossError):
    """UNAUTHENTICATED: missing or wrong API key."""

    default_code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDeniedError(GptossError):
    """PERMISSION_DENIED: the key is valid but not allowed to do this."""

    default_code = grpc.StatusCode.PERMISSION_DENIED


class OverloadedError(GptossError):
    """RESOURCE_EXHAUSTED: too many concurrent requests; back off (see retry_after_s)."""

    default_code = grpc.StatusCode.RESOURCE_EXHAUSTED


class UnavailableError(GptossError):
    """UNAVAILABLE: server down, starting, draining, or the connection broke."""

    default_code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceededError(GptossError):
    """DEADLINE_EXCEEDED: the per-call timeout ran out."""

    default_code = grpc.StatusCode.DEADLINE_EXCEEDED


class RequestCancelledError(GptossError):
    """CANCELLED: the call was cancelled (by this client or the server)."""

    default_code = grpc.StatusCode.CANCELLED


class ServerError(GptossError):
    """INTERNAL / UNKNOWN / UNIMPLEMENTED / DATA_LOSS and other server-side failures."""

    default_code = grpc.StatusCode.INTERNAL


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


def error_class(code: grpc.StatusCode, reason: str | None) -> type[GptossError]:
    """The class for a status code, refined by the ErrorInfo reason (never across codes)."""
    by_code = _BY_CODE.get(code, ServerError)
    by_reason = _BY_REASON.get(reason or "")
    # A reason refines the code's class; it never turns e.g. UNAVAILABLE into an auth error.
    if by_reason is not None and issubclass(by_reason, by_code):
        return by_reason
    return by_code


_CODES_BY_NUMBER = {status.value[0]: status for status in grpc.StatusCode}


@dataclass(frozen=True, slots=True)
class StatusDetails:
    """A decoded ``grpc-status-details-bin``: the google.rpc.Status and its first ErrorInfo."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN
    message: str = ""
    reason: str = ""
    domain: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    other_details: tuple[str, ...] = ()  # type URLs of details that are not an ErrorInfo


def decode_status_details(raw: bytes) -> StatusDetails:
    """Decode a serialized google.rpc.Status; ValueError when it is not one."""
    status = status_pb2.Status()
    try:
        status.ParseFromString(raw)
    except DecodeError as exc:
        raise ValueError(f"not a serialized google.rpc.Status: {exc}") from None
    info: error_details_pb2.ErrorInfo | None = None
    others: list[str] = []
    for detail in status.details:
        candidate = error_details_pb2.ErrorInfo()
        if info is None and detail.Is(candidate.DESCRIPTOR) and detail.Unpack(candidate):
            info = candidate
        else:
            others.append(detail.type_url)
    return StatusDetails(
        code=_CODES_BY_NUMBER.get(status.code, grpc.StatusCode.UNKNOWN),
        message=status.message,
        reason=info.reason if info else "",
        domain=info.domain if info else "",
        metadata=dict(info.metadata) if info else {},
        other_details=tuple(others),
    )


def parse_error_info(trailing_metadata: Iterable[tuple[str, Any]] | None) -> tuple[str, str, dict[str, str]]:
    """Decode ``grpc-status-details-bin`` into (reason, domain, metadata); empty when absent or garbled."""
    for key, value in trailing_metadata or ():
        if key != STATUS_DETAILS_KEY or not isinstance(value, bytes | bytearray):
            continue
        try:
            details = decode_status_details(bytes(value))
        except ValueError:
            return "", "", {}
        return details.reason, details.domain, details.metadata
    return "", "", {}


def from_rpc_error(error: grpc.RpcError, *, request_id: str | None = None) -> GptossError:
    """Turn a grpc (or grpc.aio) RpcError into the matching typed error: the one decoder of ErrorInfo.

    Works for both faces: grpc.aio.AioRpcError and the sync channel's errors are both grpc.RpcError.
    """
    code_fn = getattr(error, "code", None)
    code = code_fn() if callable(code_fn) else None
    if not isinstance(code, grpc.StatusCode):
        code = grpc.StatusCode.UNKNOWN
    details_fn = getattr(error, "details", None)
    message = (details_fn() if callable(details_fn) else None) or ""
    trailers_fn = getattr(error, "trailing_metadata", None)
    trailers = trailers_fn() if callable(trailers_fn) else None
    reason, domain, metadata = parse_error_info(trailers)
    cls = error_class(code, reason)
    return cls(
        str(message),
        code=code,
        reason=reason or None,
        domain=domain or None,
        metadata=metadata,
        request_id=request_id or None,
    )
