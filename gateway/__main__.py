"""`python -m gateway`: serve the REST gateway with uvicorn (uvloop when installed)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import uvicorn

from gateway._server import uvicorn_config
from gateway._settings import GatewaySettings, NoApiKeysError, parse_args
from gateway.app import create_app
from service.logs import configure_logging


def serve(settings: GatewaySettings) -> None:
    """Run until SIGINT/SIGTERM; uvicorn then stops accepting, lets in-flight requests finish for
    up to graceful_shutdown_timeout seconds, and the lifespan closes the gRPC channel."""
    configure_logging(settings.log_level)  # JSON lines, like the service
    uvicorn.Server(uvicorn_config(create_app(settings), settings)).run()


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_args(argv)
    try:
        settings.all_api_keys()  # refuse a configured-but-empty key list before binding anything
        settings.backend_key()
    except (NoApiKeysError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    serve(settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
