"""The one place where failures become gRPC statuses, with machine-readable google.rpc details.

Every error carries a google.rpc.ErrorInfo (domain `gptoss.v1`, a `reason`, and metadata such
as `param` or `retry_after_s`) in the status-details trailer (`gptoss.contract`), so the gateway and clients can map
it without parsing messages.
"""

from __future__ import annotations

from typing import NoReturn

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from gptoss.contract import ERROR_DOMAIN, STATUS_DETAILS_KEY

from service.harmony import RenderError


class ServiceError(Exception):
    """A request failure with its gRPC status and ErrorInfo reason."""

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        reason: str,
        *,
        param: str | None = None,
        retry_after_s: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason
        self.param = param
        self.retry_after_s = retry_after_s

    def details(self) -> bytes:
        """Serialized google.rpc.Status with one ErrorInfo."""
        info = error_details_pb2.ErrorInfo(reason=self.reason, domain=ERROR_DOMAIN)
        if self.param:
            info.metadata["param"] = self.param
        if self.retry_after_s is not None:
            info.metadata["retry_after_s"] = str(self.retry_after_s)
        packed = any_pb2.Any()
        packed.Pack(info)
        status = status_pb2.Status(code=self.code.value[0], message=self.message, details=[packed])
        serialized: bytes = status.SerializeToString()
        return serialized


def invalid_argument(message: str, param: str | None = None) -> ServiceError:
    return ServiceError(grpc.StatusCode.INVALID_ARGUMENT, message, "INVALID_REQUEST", param=param)


def render_failed(exc: RenderError) -> ServiceError:
    """The one mapping of a Harmony render failure: the request was not renderable."""
    return invalid_argument(str(exc), exc.param)


def context_length_exceeded(message: str, param: str = "messages") -> ServiceError:
    return ServiceError(grpc.StatusCode.INVALID_ARGUMENT, message, "CONTEXT_LENGTH_EXCEEDED", param=param)


def model_not_found(model: str) -> ServiceError:
    return ServiceError(
        grpc.StatusCode.NOT_FOUND, f"model {model!r} is not served here", "MODEL_NOT_FOUND", param="model"
    )


def overloaded(message: str) -> ServiceError:
    return ServiceError(grpc.StatusCode.RESOURCE_EXHAUSTED, message, "OVERLOADED", retry_after_s=1)


def unavailable(message: str, reason: str) -> ServiceError:
    return ServiceError(grpc.StatusCode.UNAVAILABLE, message, reason, retry_after_s=1)


def unauthenticated() -> ServiceError:
    return ServiceError(
        grpc.StatusCode.UNAUTHENTICATED,
        "missing or invalid API key (authorization: Bearer KEY)",
        "INVALID_API_KEY",
    )


async def abort(context: grpc.aio.ServicerContext[object, object], error: ServiceError) -> NoReturn:
    """End the RPC with the error's status, message and details."""
    await context.abort(error.code, error.message, trailing_metadata=((STATUS_DETAILS_KEY, error.details()),))
    raise AssertionError("unreachable: context.abort raises")
