"""`gptoss explain-error`: decode the base64 `grpc-status-details-bin` that `buf curl -v` shows.

Needs no server: the trailer carries the google.rpc.Status with its ErrorInfo (reason, domain,
metadata such as `param`); this prints it, and the exit code `gptoss` would use for that status.
"""

from __future__ import annotations

import argparse
import base64
import binascii

from gptoss.cli.commands import Io, print_record
from gptoss.cli.exit_codes import STATUS_EXIT_CODES, ExitCode
from gptoss.cli.inputs import UsageError
from gptoss.contract import STATUS_DETAILS_KEY
from gptoss.errors import decode_status_details


def _base64_bytes(text: str) -> bytes:
    """gRPC writes binary metadata as unpadded base64; accept padded, url-safe and `key: value` too."""
    value = text.strip()
    key, sep, rest = value.rpartition(":")
    if sep and key.strip().lstrip("<").strip().lower() == STATUS_DETAILS_KEY:
        value = rest
    value = "".join(value.split())
    if not value:
        raise UsageError("no details: pass the base64 value of grpc-status-details-bin, or pipe it on stdin")
    padded = value + "=" * (-len(value) % 4)
    try:
        altchars = b"-_" if ("-" in value or "_" in value) else None
        return base64.b64decode(padded, altchars=altchars, validate=True)
    except (binascii.Error, ValueError):
        raise UsageError(f"not base64: {value[:40]!r}") from None


def explain_error(args: argparse.Namespace, io: Io) -> int:
    """Print the decoded status; exit 0 when it decodes, 2 when it is not a serialized Status."""
    text = io.stdin.read() if args.details in (None, "-") else args.details
    try:
        details = decode_status_details(_base64_bytes(text))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    record: dict[str, object] = {
        "code": details.code.name,
        "message": details.message,
        "reason": details.reason,
        "domain": details.domain,
    }
    if args.json:
        record["metadata"] = details.metadata
    else:
        record.update({f"metadata.{key}": value for key, value in sorted(details.metadata.items())})
    if details.other_details:
        record["other_details"] = list(details.other_details)
    record["exit_code"] = int(STATUS_EXIT_CODES.get(details.code, ExitCode.FAILURE))
    print_record(record, args, io)
    return ExitCode.OK
