"""The one uvicorn configuration of the gateway: loop, logging, and the connection limits.

`python -m gateway` and the tests that need the product's limits build their server here, so a
limit cannot exist in one and not the other.
"""

from __future__ import annotations

from typing import Any

import uvicorn

from gateway._http_protocol import hardened_protocol
from gateway._settings import GatewaySettings


def event_loop() -> str:
    """uvloop when present: grpc.aio runs on it, and it halves event-loop overhead per SSE frame."""
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def uvicorn_config(app: Any, settings: GatewaySettings, **overrides: Any) -> uvicorn.Config:
    """uvicorn settings for the gateway; `overrides` only for tests (loop, log level)."""
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "loop": event_loop(),
        "log_level": settings.log_level.lower(),
        "log_config": None,  # keep our JSON handler; the middleware writes the access lines
        "access_log": False,
        "timeout_graceful_shutdown": int(settings.graceful_shutdown_timeout),
        "proxy_headers": False,
        "server_header": False,
        "http": hardened_protocol(
            header_timeout=settings.header_timeout,
            body_timeout=settings.body_timeout,
            max_header_bytes=settings.max_header_bytes,
        ),
        "timeout_keep_alive": settings.keep_alive_timeout,
        # uvicorn counts the connection asking too: +1 so max_connections are served, the next gets 503.
        "limit_concurrency": settings.max_connections + 1,
        "h11_max_incomplete_event_size": settings.max_header_bytes,
    }
    options.update(overrides)
    return uvicorn.Config(app, **options)
