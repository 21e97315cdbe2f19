"""The `gptoss` argument parser (stdlib argparse): connection flags before or after the subcommand."""

from __future__ import annotations

import argparse
import os
from typing import Any

from gptoss.build import REASONING_EFFORTS
from gptoss.cli.exit_codes import EPILOG
from gptoss.connection import DEFAULT_TARGET
from gptoss.contract import READINESS_SERVICE


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
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


def _connection_flags() -> list[tuple[str, object, dict[str, Any]]]:
    """(flag, default, add_argument options) of each connection flag; env defaults read now."""
    target = os.environ.get("GPTOSS_TARGET") or DEFAULT_TARGET
    pem = {"metavar": "PEM"}
    return [
        ("--target", target, {"help": f"host:port of the gRPC server (env GPTOSS_TARGET; now {target})"}),
        (
            "--api-key",
            os.environ.get("GPTOSS_API_KEY") or None,
            {"help": "sent as 'authorization: Bearer KEY' (env GPTOSS_API_KEY)"},
        ),
        (
            "--timeout",
            None,
            {
                "type": _positive_float,
                "metavar": "SECONDS",
                "help": "per-call deadline (default: none for chat, 30 s otherwise)",
            },
        ),
        ("--tls", False, {"action": "store_true", "help": "use TLS with the system's root certificates"}),
        ("--ca-cert", None, {**pem, "help": "root certificates to trust (implies --tls)"}),
        ("--cert", None, {**pem, "help": "client certificate for mTLS (implies --tls; needs --key)"}),
        ("--key", None, {**pem, "help": "client private key for mTLS (with --cert)"}),
        (
            "--server-name",
            None,
            {"metavar": "NAME", "help": "TLS server name override (SNI / certificate check)"},
        ),
        (
            "--no-color",
            False,
            {
                "action": "store_true",
                "help": "no ANSI colors (also off when not a terminal or NO_COLOR is set)",
            },
        ),
    ]


def _add_connection_flags(parser: argparse.ArgumentParser, *, with_defaults: bool) -> None:
    """The connection flags, on the main parser (with the defaults) and on every subcommand
    (default SUPPRESS, so a flag after the subcommand overrides one before it, and an absent one
    leaves the main parser's value): `gptoss --target X health` and `gptoss health --target X`."""
    group = parser.add_argument_group("connection (before or after the subcommand)")
    for flag, default, options in _connection_flags():
        group.add_argument(flag, default=default if with_defaults else argparse.SUPPRESS, **options)


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
    fmt = parser.add_mutually_exclusive_group()
    fmt.add_argument(
        "--json-schema",
        metavar="FILE",
        help="answer with JSON valid under the schema in FILE (enforced while decoding)",
    )
    fmt.add_argument("--json-object", action="store_true", help="answer with any JSON object")
    parser.add_argument(
        "--schema-name", metavar="NAME", help="the --json-schema format's name (default: the file's stem)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")


def _subcommand(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], name: str, summary: str
) -> argparse.ArgumentParser:
    sub = commands.add_parser(name, help=summary, description=summary, epilog=EPILOG)
    _add_connection_flags(sub, with_defaults=False)
    return sub


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gptoss",
        description="Talk to a gptoss.v1.InferenceService gRPC server.",
        epilog=EPILOG,
    )
    _add_connection_flags(parser, with_defaults=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    chat = _subcommand(
        commands,
        "chat",
        "one-shot chat with PROMPT (or stdin); interactive when neither is given in a terminal",
    )
    _conversation_flags(chat)
    chat.add_argument(
        "--max-tokens",
        type=_positive_int,
        metavar="N",
        help="most tokens to generate (default: the server's)",
    )
    chat.add_argument(
        "--temperature",
        type=_non_negative_float,
        help="sampling temperature, 0 = greedy (default: the server's)",
    )
    chat.add_argument(
        "--top-p", type=_positive_float, help="nucleus sampling: keep tokens up to this probability mass"
    )
    chat.add_argument("--seed", type=int, help="sampling seed, for repeatable output")
    chat.add_argument("--stop", action="append", metavar="TEXT", help="stop string (repeatable)")
    chat.add_argument(
        "--model", help="model id; the server answers NOT_FOUND (exit 9) for one it does not serve"
    )
    chat.add_argument("--request-id", help="sent as request_id and x-request-id (for the server's logs)")
    chat.add_argument(
        "--max-reasoning-tokens",
        type=_non_negative_int,
        metavar="N",
        help="most analysis tokens before the answer is forced; 0: none (default: the server's)",
    )
    chat.add_argument("--hide-reasoning", action="store_true", help="do not print the reasoning")

    models = _subcommand(commands, "models", "show the served model and its limits")
    models.add_argument("--json", action="store_true", help="print JSON")

    count = _subcommand(commands, "count-tokens", "length of the Harmony-rendered prompt")
    _conversation_flags(count)

    health = _subcommand(commands, "health", "grpc.health.v1 check: exit 0 when SERVING, 8 otherwise")
    which = health.add_mutually_exclusive_group()
    which.add_argument(
        "--liveness", action="store_true", help="check the server process ('' service) instead of readiness"
    )
    which.add_argument(
        "--service", default=READINESS_SERVICE, help="health service name (default %(default)s)"
    )
    health.add_argument(
        "--wait", type=_positive_float, metavar="SECONDS", help="poll until SERVING, up to SECONDS"
    )
    health.add_argument("--json", action="store_true", help="print JSON")

    explain = _subcommand(
        commands,
        "explain-error",
        "decode a grpc-status-details-bin trailer (base64) into status, reason, domain and metadata",
    )
    explain.add_argument(
        "details",
        nargs="?",
        metavar="BASE64",
        help="the trailer's value, with or without its 'grpc-status-details-bin:' key; '-' or omitted reads stdin",
    )
    explain.add_argument("--json", action="store_true", help="print JSON")
    return parser
