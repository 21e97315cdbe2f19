"""The `gptoss` command line: chat, models, count-tokens, health, explain-error (stdlib argparse only)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from gptoss.cli.commands import COMMANDS, Io, make_client
from gptoss.cli.exit_codes import ExitCode, exit_code_for
from gptoss.cli.explain import explain_error
from gptoss.cli.inputs import UsageError
from gptoss.cli.parser import build_parser
from gptoss.errors import (
    AuthenticationError,
    DeadlineExceededError,
    GptossError,
    NotFoundError,
    PermissionDeniedError,
    UnavailableError,
)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def describe_error(error: GptossError, target: str, timeout: float | None) -> str:
    """A one-line, actionable message for stderr."""
    detail = _one_line(str(error))
    if isinstance(error, UnavailableError):
        return f"server {target} unavailable ({detail})"
    if isinstance(error, AuthenticationError):
        return f"authentication failed ({detail}); pass --api-key or set GPTOSS_API_KEY"
    if isinstance(error, PermissionDeniedError):
        return f"permission denied ({detail})"
    if isinstance(error, NotFoundError) and error.param == "model":
        return f"{detail}; `gptoss models` shows the served model"
    if isinstance(error, DeadlineExceededError):
        limit = f" after {timeout:g}s" if timeout is not None else ""
        return f"deadline exceeded{limit} ({detail}); raise --timeout"
    return detail


def main(argv: Sequence[str] | None = None, io: Io | None = None) -> int:
    """Entry point of the console script; returns the exit code (see `gptoss --help`)."""
    io = io or Io(sys.stdin, sys.stdout, sys.stderr)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "explain-error":  # decodes text; no server to connect to
            return explain_error(args, io)
        with make_client(args) as client:
            return int(COMMANDS[args.command](args, client, io))
    except UsageError as exc:
        io.stderr.write(f"gptoss {args.command}: error: {exc}\n")
        return ExitCode.USAGE
    except GptossError as exc:
        io.stderr.write(f"gptoss: {describe_error(exc, args.target, args.timeout)}\n")
        return exit_code_for(exc)
    except KeyboardInterrupt:
        io.stderr.write("gptoss: interrupted\n")
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        return ExitCode.FAILURE  # e.g. `gptoss chat ... | head -1`: nobody reads the rest


__all__ = ["ExitCode", "Io", "main"]
