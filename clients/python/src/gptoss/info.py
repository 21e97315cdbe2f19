"""Typed results of the unary calls: model info, token counts, health."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from grpc_health.v1 import health_pb2


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """The served model and its limits (GetModelInfo)."""

    model_id: str
    max_context_length: int
    profile: str
    engine_version: str
    max_concurrent_requests: int

    @classmethod
    def from_proto(cls, msg: Any) -> ModelInfo:
        return cls(
            model_id=msg.model_id,
            max_context_length=msg.max_context_length,
            profile=msg.profile,
            engine_version=msg.engine_version,
            max_concurrent_requests=msg.max_concurrent_requests,
        )


@dataclass(frozen=True, slots=True)
class TokenCount:
    """Length of the Harmony-rendered prompt (CountTokens)."""

    prompt_tokens: int
    max_context_length: int

    @classmethod
    def from_proto(cls, msg: Any) -> TokenCount:
        return cls(prompt_tokens=msg.prompt_tokens, max_context_length=msg.max_context_length)


class ServingStatus(enum.StrEnum):
    """grpc.health.v1 serving status."""

    UNKNOWN = "UNKNOWN"
    SERVING = "SERVING"
    NOT_SERVING = "NOT_SERVING"
    SERVICE_UNKNOWN = "SERVICE_UNKNOWN"

    @classmethod
    def from_proto(cls, value: int) -> ServingStatus:
        try:
            return cls(health_pb2.HealthCheckResponse.ServingStatus.Name(value))
        except ValueError:  # a status this client does not know yet
            return cls.UNKNOWN


def health_request(service: str) -> Any:
    return health_pb2.HealthCheckRequest(service=service)
