"""The `gptoss` argument parser (stdlib argparse): connection flags on every subcommand."""

from __future__ import annotations

import argparse
import os

from gptoss.build import REASONING_EFFORTS
from gptoss.cli.exit_codes import EPILOG
from gptoss.connection import DEFAULT_TARGET, SERVICE_NAME


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 0:  # also rejects nan
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = _non_negative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return value


def _connection_flags() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("connection")
    group.add_argument(
        "--target",
        default=os.environ.get("GPTOSS_TARGET") or DEFAULT_TARGET,
        help="host:port of the gRPC server (env GPTOSS_TARGET; default %(default)s)",
    )
    group.add_argument(
        "--api-key",
        default=os.environ.get("GPTOSS_API_KEY") or None,
        help="sent as 'authorization: Bearer KEY' (env GPTOSS_API_KEY)",
    )
    group.add_argument(
        "--timeout",
        type=_positive_float,
        metavar="SECONDS",
        help="per-call deadline (default: none for chat, 30 s otherwise)",
    )
    group.add_argument("--tls", action="store_true", help="use TLS with the system's root certificates")
    group.add_argument("--ca-cert", metavar="PEM", help="root certificates to trust (implies --tls)")
    group.add_argument(
        "--cert", metavar="PEM", help="client certificate for mTLS (implies --tls; needs --key)"
    )
    group.add_argument("--key", metavar="PEM", help="client private key for mTLS")
    group.add_argument(
        "--server-name", metavar="NAME", help="TLS server name override (SNI / certificate check)"
    )
    group.add_argument(
        "--no-color",
        action="store_true",
        help="no ANSI colors (also off when not a terminal or NO_COLOR is set)",
    )
    return parent


def _conversation_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("prompt", nargs="?", help="user message; '-' or omitted with piped stdin reads stdin")
    parser.add_argument("--system", metavar="TEXT", help="a system message before the prompt")
    parser.add_argument(
        "--developer", metavar="TEXT", help="developer instructions (Harmony developer message)"
    )
    parser.add_argument(
        "--reasoning-effort", choices=REASONING_EFFORTS, help="default: the server's (medium)"
    )
    parser.add_argument(
        "--tools", metavar="JSON_FILE", help="JSON list of function tools (OpenAI or gptoss shape)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gptoss",
        description="Talk to a gptoss.v1.InferenceService gRPC server.",
        epilog=EPILOG,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    parent = _connection_flags()

    chat = commands.add_parser(
        "chat",
        parents=[parent],
        help="one-shot chat with PROMPT (or stdin); interactive when neither is given in a terminal",
        epilog=EPILOG,
    )
    _conversation_flags(chat)
    chat.add_argument("--max-tokens", type=_positive_int, metavar="N")
    chat.add_argument("--temperature", type=_non_negative_float)
    chat.add_argument("--top-p", type=_positive_float)
    chat.add_argument("--seed", type=int)
    chat.add_argument("--stop", action="append", metavar="TEXT", help="stop string (repeatable)")
    chat.add_argument("--model", help="model id (default: the served model)")
    chat.add_argument("--request-id", help="sent as request_id and x-request-id (for the server's logs)")
    chat.add_argument("--hide-reasoning", action="store_true", help="do not print the reasoning")

    models = commands.add_parser(
        "models", parents=[parent], help="show the served model and its limits", epilog=EPILOG
    )
    models.add_argument("--json", action="store_true", help="print JSON")

    count = commands.add_parser(
        "count-tokens", parents=[parent], help="length of the Harmony-rendered prompt", epilog=EPILOG
    )
    _conversation_flags(count)

    health = commands.add_parser("health", parents=[parent], help="grpc.health.v1 check", epilog=EPILOG)
    which = health.add_mutually_exclusive_group()
    which.add_argument(
        "--liveness", action="store_true", help="check the server process ('' service) instead of readiness"
    )
    which.add_argument("--service", default=SERVICE_NAME, help="health service name (default %(default)s)")
    health.add_argument(
        "--wait", type=_positive_float, metavar="SECONDS", help="poll until SERVING, up to SECONDS"
    )
    health.add_argument("--json", action="store_true", help="print JSON")
    return parser
