"""`python -m service`: run one replica until SIGTERM/SIGINT (drain) or engine death (exit 1).

`--help` and `--print-config` show the effective settings (service/settings_report.py) and exit.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

import pydantic

from service.config import Settings, load_settings
from service.logs import configure_logging
from service.server import GrpcService
from service.settings_report import render_report, report_request
from service.stderr_lines import route_stderr_through_json
from service.tracing import configure_tracing

log = logging.getLogger("service")


async def serve(settings: Settings) -> int:
    service = GrpcService(settings)
    await service.start()
    loop = asyncio.get_running_loop()
    drain: asyncio.Task[None] | None = None

    def on_signal(signum: int) -> None:
        nonlocal drain
        if drain is None:
            log.info(
                "signal %s: draining (grace %.0fs)", signal.Signals(signum).name, settings.drain_grace_seconds
            )
            drain = loop.create_task(service.drain_and_stop())

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    await service.stopped.wait()
    if drain is not None:
        await drain
    return service.exit_code


_KEY_FLAGS = ("--api-keys", "--trusted-gateway-keys")


def warn_about_keys_in_argv(args: list[str]) -> None:
    """A key on the command line shows in /proc/*/cmdline and `ps`: steer operators to env or a file."""
    if any(arg.split("=", 1)[0] in _KEY_FLAGS for arg in args):
        log.warning(
            "API keys given on the command line are visible to every local user (/proc/*/cmdline): "
            "use GPTOSS_API_KEYS, GPTOSS_TRUSTED_GATEWAY_KEYS or GPTOSS_API_KEY_FILE"
        )


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    report = report_request(args)
    if report is not None:
        sys.stdout.write(render_report(*report))
        return 0
    try:
        settings = load_settings(args)
    except pydantic.ValidationError as exc:  # a refusal to start, not a crash: no traceback
        print(f"gptoss-service: invalid settings: {exc}", file=sys.stderr)
        return 2
    route_stderr_through_json()  # C++ warnings and child prints become JSON lines too
    configure_logging(settings.log_level)
    warn_about_keys_in_argv(args)
    configure_tracing(settings.otel_exporter)
    log.info("starting", extra={"settings": settings.public_summary()})
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        return asyncio.run(serve(settings))
    return uvloop.run(serve(settings))


if __name__ == "__main__":
    sys.exit(main())
