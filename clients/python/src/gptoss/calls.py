"""Per-call keyword options of both clients: one definition, so Client and AsyncClient cannot drift."""

from __future__ import annotations

from typing import TypedDict

from gptoss.build import CountTokensOptions, GenerateOptions
from gptoss.connection import Metadata


class CallOptions(TypedDict, total=False):
    """timeout: this call's deadline in seconds (default: the client's). metadata: extra gRPC
    metadata, e.g. ("x-gptoss-caller", "gateway") or ("traceparent", ...)."""

    timeout: float | None
    metadata: Metadata | None


class GenerateCall(GenerateOptions, CallOptions, total=False):
    """Generate's keyword options; request_id is sent as request_id and as x-request-id."""

    request_id: str | None


class CountTokensCall(CountTokensOptions, CallOptions, total=False):
    """CountTokens' keyword options: the conversation, plus deadline and metadata."""
