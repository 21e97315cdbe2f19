"""Gateway settings: one typed object from CLI flags over `GPTOSS_GATEWAY_*` env over defaults."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _split(value: Any) -> Any:
    """Env lists are comma-separated (`GPTOSS_GATEWAY_BACKENDS=a:1,b:2`), which reads better than JSON."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class GatewaySettings(BaseSettings):
    """Everything the gateway needs; immutable once built so the app can share it freely."""

    model_config = SettingsConfigDict(env_prefix="GPTOSS_GATEWAY_", frozen=True, extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    # gRPC service addresses; several are balanced with gRPC's own round_robin policy.
    backends: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["127.0.0.1:50051"], min_length=1
    )
    # Keys callers must present as `Authorization: Bearer`; empty means no auth.
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    # A file with one key per line (blank lines and `#` comments skipped), added to api_keys.
    api_key_file: Path | None = None
    # Key the gateway itself presents to the service (`authorization: Bearer` metadata).
    backend_api_key: SecretStr | None = None
    # gRPC deadline for one request, streams included; None means no deadline.
    request_timeout: float | None = Field(default=600.0, gt=0)
    # How long the served model's id and limits are cached between GetModelInfo calls.
    model_info_ttl: float = Field(default=30.0, ge=0)
    # Seconds a shutdown waits for in-flight requests before closing them.
    graceful_shutdown_timeout: float = Field(default=30.0, ge=0)
    # Largest accepted request body (413 above); matches the service's gRPC message limit.
    max_request_bytes: int = Field(default=4 << 20, ge=1024)
    # How long a stream waits for the first event before committing to 200: errors the service
    # reports within it are plain HTTP errors, later ones in-band SSE error events.
    stream_commit_timeout: float = Field(default=1.0, ge=0)
    # Seconds between SSE keep-alive comments while the model is silent (long prefill, queueing).
    sse_keepalive: float = Field(default=15.0, gt=0)
    # Ask gRPC to skip backends whose readiness health check is not SERVING (starting, draining).
    backend_health_check: bool = True
    log_level: str = "info"

    @field_validator("backends", "api_keys", mode="before")
    @classmethod
    def _split_lists(cls, value: Any) -> Any:
        return _split(value)

    def all_api_keys(self) -> list[str]:
        """Keys from flags/env plus the key file, read at startup so a bad path fails fast."""
        keys = [key.get_secret_value() for key in self.api_keys]
        if self.api_key_file is not None:
            for line in self.api_key_file.read_text().splitlines():
                line = line.split("#", 1)[0].strip()
                if line:
                    keys.append(line)
        return keys


def parse_args(argv: Sequence[str] | None = None) -> GatewaySettings:
    """CLI flags override the environment; only flags actually given are passed on."""
    parser = argparse.ArgumentParser(
        prog="python -m gateway", description="OpenAI REST gateway over gptoss.v1"
    )
    parser.add_argument("--host", help="listen address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="listen port (default 8000)")
    parser.add_argument(
        "--backend", action="append", dest="backends", help="gRPC service host:port; repeat for several"
    )
    parser.add_argument("--api-key", action="append", dest="api_keys", help="accepted API key; repeatable")
    parser.add_argument("--api-key-file", type=Path, help="file with one accepted API key per line")
    parser.add_argument("--backend-api-key", help="key the gateway presents to the service")
    parser.add_argument("--request-timeout", type=float, help="gRPC deadline per request in seconds")
    parser.add_argument("--graceful-shutdown-timeout", type=float)
    parser.add_argument("--log-level")
    given = {key: value for key, value in vars(parser.parse_args(argv)).items() if value is not None}
    return GatewaySettings(**given)
