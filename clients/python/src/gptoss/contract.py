"""The names of the gptoss.v1 contract that are not in the .proto: one definition each.

The service, the gateway, the CLI, bench/ and deploy/ import these; nobody spells them out again.
"""

from __future__ import annotations

from typing import Final

# grpc.health.v1: "" answers liveness, this name answers readiness (engine loaded, not draining).
READINESS_SERVICE: Final = "gptoss.v1.InferenceService"
LIVENESS_SERVICE: Final = ""
# google.rpc.ErrorInfo.domain on every error the service returns.
ERROR_DOMAIN: Final = "gptoss.v1"
# Trailing metadata key that carries the serialized google.rpc.Status (with its ErrorInfo).
STATUS_DETAILS_KEY: Final = "grpc-status-details-bin"
# Metadata the gateway (or any caller) sends beside a request.
REQUEST_ID_METADATA: Final = "x-request-id"
CALLER_METADATA: Final = "x-gptoss-caller"
