"""What the CLI reads from files (certificates, tools, JSON schemas), and the usage errors it raises.

Kept apart from the commands so every file flag fails the same way: exit 2 with the flag's name
and the reason, before any call reaches the server.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from gptoss.formats import json_object, json_schema

# The service's pattern for a response format's name (it refuses others with INVALID_ARGUMENT).
_FORMAT_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class UsageError(Exception):
    """A bad argument found after parsing (missing file, empty stdin): exit code 2."""


def read_file(path: str | None, flag: str) -> bytes | None:
    if path is None:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"{flag}: cannot read {path}: {exc.strerror or exc}") from None


def read_json(path: str, flag: str) -> Any:
    raw = read_file(path, flag)
    try:
        return json.loads(raw or b"")
    except ValueError as exc:
        raise UsageError(f"{flag}: {path} is not JSON: {exc}") from None


def _default_name(path: str) -> str:
    """The file's stem when it is a valid format name (`person.json` -> person), else `response`."""
    stem = Path(path).stem
    return stem if _FORMAT_NAME.match(stem) else "response"


def response_format(args: argparse.Namespace) -> Any | None:
    """The ResponseFormat of --json-schema FILE [--schema-name N] / --json-object, or None.

    FILE holds a JSON schema, or OpenAI's `{"name": ..., "schema": ..., "strict": ...}` wrapper
    (a JSON schema has no top-level `schema` keyword, so the two cannot be confused).
    """
    if args.schema_name is not None and args.json_schema is None:
        raise UsageError("--schema-name names a --json-schema format; pass --json-schema FILE too")
    if args.json_object:
        return json_object()
    if args.json_schema is None:
        return None
    data = read_json(args.json_schema, "--json-schema")
    if not isinstance(data, dict):
        raise UsageError(f"--json-schema: {args.json_schema} must hold a JSON object (a schema)")
    wrapped = isinstance(data.get("schema"), dict)
    schema = data["schema"] if wrapped else data
    name = args.schema_name or (data.get("name") if wrapped else None) or _default_name(args.json_schema)
    strict = data.get("strict", True) if wrapped else True
    if not isinstance(strict, bool):
        raise UsageError("--json-schema: 'strict' must be true or false")
    try:
        return json_schema(
            str(name),
            schema,
            strict=strict,
            description=str(data.get("description") or "") if wrapped else "",
        )
    except (TypeError, ValueError) as exc:
        raise UsageError(f"--json-schema: {exc}") from None
