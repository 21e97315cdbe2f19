"""`python -m gateway`: serve the REST gateway with uvicorn (uvloop when installed)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import uvicorn

from gateway._settings import GatewaySettings, parse_args
from gateway.app import create_app
from service.logs import configure_logging


def _loop() -> str:
    """uvloop when present: grpc.aio runs on it, and it halves event-loop overhead per SSE frame."""
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def serve(settings: GatewaySettings) -> None:
    """Run until SIGINT/SIGTERM; uvicorn then stops accepting, lets in-flight requests finish for
    up to graceful_shutdown_timeout seconds, and the lifespan closes the gRPC channel."""
    configure_logging(settings.log_level)  # JSON lines, like the service
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        loop=_loop(),
        log_level=settings.log_level.lower(),
        log_config=None,  # keep our JSON handler; the middleware writes the access lines
        access_log=False,
        timeout_graceful_shutdown=int(settings.graceful_shutdown_timeout),
        proxy_headers=False,
        server_header=False,
    )
    uvicorn.Server(config).run()


def main(argv: Sequence[str] | None = None) -> int:
    serve(parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
