"""Exit codes of the `gptoss` CLI: one per failure a script would handle differently."""

from __future__ import annotations

import enum

from gptoss.errors import (
    AuthenticationError,
    DeadlineExceededError,
    GptossError,
    InvalidRequestError,
    NotFoundError,
    OverloadedError,
    PermissionDeniedError,
    UnavailableError,
)


class ExitCode(enum.IntEnum):
    OK = 0
    FAILURE = 1  # a server error, or a generation that finished with an error
    USAGE = 2  # bad command-line arguments (argparse's own code)
    UNAVAILABLE = 3  # server down, unreachable, starting or draining
    AUTH = 4  # missing / wrong API key, or not allowed
    DEADLINE = 5  # --timeout ran out
    INVALID_REQUEST = 6  # the server rejected the request (too long, unknown model, bad field)
    OVERLOADED = 7  # too many concurrent requests
    NOT_SERVING = 8  # `gptoss health`: the server answered but is not SERVING
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT, as shells do)


_BY_ERROR: tuple[tuple[type[GptossError], ExitCode], ...] = (
    (UnavailableError, ExitCode.UNAVAILABLE),
    (AuthenticationError, ExitCode.AUTH),
    (PermissionDeniedError, ExitCode.AUTH),
    (DeadlineExceededError, ExitCode.DEADLINE),
    (InvalidRequestError, ExitCode.INVALID_REQUEST),
    (NotFoundError, ExitCode.INVALID_REQUEST),
    (OverloadedError, ExitCode.OVERLOADED),
)


def exit_code_for(error: GptossError) -> ExitCode:
    for cls, code in _BY_ERROR:
        if isinstance(error, cls):
            return code
    return ExitCode.FAILURE


EPILOG = "exit codes: " + ", ".join(f"{c.value} {c.name.lower().replace('_', ' ')}" for c in ExitCode)
