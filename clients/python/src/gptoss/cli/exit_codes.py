"""Exit codes of the `gptoss` CLI: one per failure a script would handle differently.

Every gRPC status has its documented code (`STATUS_EXIT_CODES`, also in `gptoss --help` and
clients/python/README.md); a failed call exits with the code of the status the server sent.
"""

from __future__ import annotations

import enum

import grpc

from gptoss.errors import GptossError


class ExitCode(enum.IntEnum):
    OK = 0
    FAILURE = 1  # a server error, or a generation that finished with an error
    USAGE = 2  # bad command-line arguments (argparse's own code)
    UNAVAILABLE = 3  # server down, unreachable, starting or draining
    AUTH = 4  # missing / wrong API key, or not allowed
    DEADLINE = 5  # --timeout ran out
    INVALID_REQUEST = 6  # the server rejected the request (too long, bad field)
    OVERLOADED = 7  # too many concurrent requests
    NOT_SERVING = 8  # `gptoss health`: the server answered but is not SERVING
    NOT_FOUND = 9  # e.g. --model names a model the server does not serve
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT, as shells do)


S = grpc.StatusCode
STATUS_EXIT_CODES: dict[grpc.StatusCode, ExitCode] = {
    S.OK: ExitCode.OK,
    S.CANCELLED: ExitCode.FAILURE,
    S.UNKNOWN: ExitCode.FAILURE,
    S.INVALID_ARGUMENT: ExitCode.INVALID_REQUEST,
    S.DEADLINE_EXCEEDED: ExitCode.DEADLINE,
    S.NOT_FOUND: ExitCode.NOT_FOUND,
    S.ALREADY_EXISTS: ExitCode.FAILURE,
    S.PERMISSION_DENIED: ExitCode.AUTH,
    S.RESOURCE_EXHAUSTED: ExitCode.OVERLOADED,
    S.FAILED_PRECONDITION: ExitCode.FAILURE,
    S.ABORTED: ExitCode.FAILURE,
    S.OUT_OF_RANGE: ExitCode.INVALID_REQUEST,
    S.UNIMPLEMENTED: ExitCode.FAILURE,
    S.INTERNAL: ExitCode.FAILURE,
    S.UNAVAILABLE: ExitCode.UNAVAILABLE,
    S.DATA_LOSS: ExitCode.FAILURE,
    S.UNAUTHENTICATED: ExitCode.AUTH,
}


def exit_code_for(error: GptossError) -> ExitCode:
    """The exit code of the error's gRPC status (errors the client raises itself carry one too)."""
    return STATUS_EXIT_CODES.get(error.code, ExitCode.FAILURE)


def _name(code: ExitCode) -> str:
    return code.name.lower().replace("_", " ")


EPILOG = (
    "exit codes: "
    + ", ".join(f"{c.value} {_name(c)}" for c in ExitCode)
    + ". By gRPC status: "
    + ", ".join(f"{s.name} {e.value}" for s, e in STATUS_EXIT_CODES.items() if s is not S.OK)
    + "."
)
