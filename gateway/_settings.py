"""Gateway settings: one typed object from CLI flags over `GPTOSS_GATEWAY_*` env over defaults.

Every setting is a flag too (`--help` lists them from the field descriptions below), so the
env-only settings of the past cannot come back.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, get_args

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ENV_PREFIX = "GPTOSS_GATEWAY_"


def _split(value: Any) -> Any:
    """Env lists are comma-separated (`GPTOSS_GATEWAY_BACKENDS=a:1,b:2`), which reads better than JSON."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class NoApiKeysError(ValueError):
    """A key source was configured but holds no key: refusing beats silently turning auth off."""


class GatewaySettings(BaseSettings):
    """Everything the gateway needs; immutable once built so the app can share it freely."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="forbid")

    host: str = Field("127.0.0.1", description="listen address")
    port: int = Field(8000, ge=0, le=65535, description="listen port (0: any free port)")
    backends: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["127.0.0.1:50051"],
        min_length=1,
        description="gRPC service host:port (repeat the flag, or comma-separate in env); several are "
        "balanced with gRPC's round_robin",
    )
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="keys callers must present as `Authorization: Bearer`; prefer the env var or "
        "--api-key-file (a flag's value shows in /proc/*/cmdline)",
    )
    api_key_file: Path | None = Field(
        None, description="file with one accepted key per line (blank lines and # comments skipped)"
    )
    allow_no_auth: bool = Field(
        False,
        description="start even though api_keys / api_key_file are set but hold no key "
        "(otherwise that refuses to start instead of silently turning auth off)",
    )
    backend_api_key: SecretStr | None = Field(
        None, description="key the gateway presents to the service; prefer the env var or the file"
    )
    backend_api_key_file: Path | None = Field(
        None, description="file holding the key the gateway presents to the service"
    )
    request_timeout: float | None = Field(
        600.0, gt=0, description="gRPC deadline per request in seconds, streams included"
    )
    model_info_ttl: float = Field(
        30.0, ge=0, description="seconds the model's id and limits are cached between GetModelInfo calls"
    )
    graceful_shutdown_timeout: float = Field(
        30.0, ge=0, description="seconds a shutdown waits for in-flight requests before closing them"
    )
    max_request_bytes: int = Field(
        4 << 20, ge=1024, description="largest accepted request body in bytes (413 above)"
    )
    stream_commit_timeout: float = Field(
        1.0,
        ge=0,
        description="seconds a stream waits for the first event before committing to 200: earlier "
        "service errors are plain HTTP errors, later ones in-band SSE error events",
    )
    sse_keepalive: float = Field(
        15.0, gt=0, description="seconds between SSE keep-alive comments while the model is silent"
    )
    backend_health_check: bool = Field(
        True, description="skip backends whose readiness health check is not SERVING"
    )
    header_timeout: float = Field(
        10.0,
        gt=0,
        description="seconds a connection may take to send a request's headers (slowloris guard); "
        "also closes connections that never send anything",
    )
    body_timeout: float = Field(
        30.0, gt=0, description="longest silence in seconds while a request body is being received"
    )
    keep_alive_timeout: float = Field(
        5.0, gt=0, description="seconds an idle keep-alive connection stays open between requests"
    )
    max_connections: int = Field(
        2048,
        ge=1,
        description="concurrent connections (and requests) served; beyond it requests get 503",
    )
    max_header_bytes: int = Field(
        64 << 10, ge=1024, description="largest request head (request line and headers) in bytes (431)"
    )
    docs: bool = Field(
        False,
        description="serve /docs, /redoc and /openapi.json (behind the API keys when keys are set)",
    )
    log_level: str = Field("info", description="log level (debug, info, warning, error)")
    store: bool = Field(
        True,
        description="keep Responses (store=true, the default), conversations and background responses "
        "in the database; off: nothing is stored and stateful requests get 400",
    )
    store_url: str | None = Field(
        None,
        description="database of the response store: postgresql://user:pw@host/db for several replicas; "
        "unset: SQLite file gateway.db in data_dir",
    )
    data_dir: Path = Field(
        Path("gateway-data"), description="directory of the embedded SQLite store (when store_url is unset)"
    )
    store_ttl: float | None = Field(
        30 * 86400.0, gt=0, description="seconds a stored response or conversation is kept (30 days)"
    )
    store_max_responses: int | None = Field(
        1_000_000, ge=1, description="most stored responses kept; the oldest beyond are deleted"
    )
    store_heartbeat: float = Field(
        5.0, gt=0, description="seconds between heartbeats of in-progress responses and store housekeeping"
    )
    store_stale_after: float = Field(
        30.0,
        gt=0,
        description="an in-progress response whose heartbeat is older than this is marked failed "
        "(its gateway died mid-generation)",
    )
    store_timeout: float = Field(5.0, gt=0, description="seconds to wait for a database connection")

    @field_validator("backends", "api_keys", mode="before")
    @classmethod
    def _split_lists(cls, value: Any) -> Any:
        return _split(value)

    def all_api_keys(self) -> list[str]:
        """Keys from flags/env plus the key file, read at startup so a bad path fails fast.

        Raises NoApiKeysError when a key source was given but yields no key (`","`, an empty
        file), unless allow_no_auth says that is intended.
        """
        keys = [key.get_secret_value().strip() for key in self.api_keys]
        keys = [key for key in keys if key]
        if self.api_key_file is not None:
            keys += _read_keys(self.api_key_file)
        configured = "api_keys" in self.model_fields_set or self.api_key_file is not None
        if configured and not keys and not self.allow_no_auth:
            raise NoApiKeysError(
                f"{ENV_PREFIX}API_KEYS / --api-key-file are set but hold no key; refusing to start "
                f"without auth (set {ENV_PREFIX}ALLOW_NO_AUTH=1 if that is intended)"
            )
        return keys

    def backend_key(self) -> str | None:
        """The key for the service, from the setting or its file (the file wins when both are set)."""
        if self.backend_api_key_file is not None:
            keys = _read_keys(self.backend_api_key_file)
            if len(keys) != 1:
                raise ValueError(f"{self.backend_api_key_file} must hold exactly one key")
            return keys[0]
        return self.backend_api_key.get_secret_value() if self.backend_api_key else None


def _read_keys(path: Path) -> list[str]:
    keys = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            keys.append(line)
    return keys


_CONVERTERS: dict[object, Callable[[str], object]] = {int: int, float: float, Path: Path}
_SECRET_FLAGS = {"api_keys": "--api-key", "backend_api_key": "--backend-api-key"}
_LIST_FLAGS = {"backends": "--backend", "api_keys": "--api-key"}


def build_parser() -> argparse.ArgumentParser:
    """One flag per setting, typed and described from the model's fields."""
    parser = argparse.ArgumentParser(
        prog="python -m gateway",
        description=f"OpenAI REST gateway over gptoss.v1. Every flag has an env var: {ENV_PREFIX}<NAME>.",
    )
    for name, field in GatewaySettings.model_fields.items():
        flag = _LIST_FLAGS.get(name, "--" + name.replace("_", "-"))
        env = f"[env {ENV_PREFIX}{name.upper()}]"
        default = field.get_default(call_default_factory=True)
        shown = default.get_secret_value() if isinstance(default, SecretStr) else default
        help_text = f"{field.description} (default: {shown}) {env}"
        # `X | None` -> X; list fields are handled by name below.
        kind = next((t for t in get_args(field.annotation) if t is not type(None)), field.annotation)
        if kind is bool:
            parser.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, help=help_text)
        elif name in _LIST_FLAGS:
            parser.add_argument(flag, dest=name, action="append", help=help_text + "; repeatable")
        else:
            converter: Callable[[str], object] = _CONVERTERS.get(kind, str)
            parser.add_argument(flag, dest=name, type=converter, help=help_text)
        parser.set_defaults(**{name: None})
    return parser


def parse_args(argv: Sequence[str] | None = None) -> GatewaySettings:
    """CLI flags override the environment; only flags actually given are passed on."""
    given = {key: value for key, value in vars(build_parser().parse_args(argv)).items() if value is not None}
    for name, flag in _SECRET_FLAGS.items():
        if name in given:
            print(
                f"warning: {flag} puts a key in the process's command line (/proc/*/cmdline, ps); "
                f"use {ENV_PREFIX}{name.upper()} or the key file instead",
                file=sys.stderr,
            )
    return GatewaySettings(**given)
