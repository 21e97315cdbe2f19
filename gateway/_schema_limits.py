"""Explicit caps on a tool's JSON schema (depth and size), checked before anything recursive sees it.

Protobuf's Struct conversion fails from ~32 levels and Python's recursion limit from ~330; both
used to reach the catch-all handler as a 500. A schema over these caps is a 400 naming the param.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated

from pydantic import BeforeValidator
from pydantic_core import PydanticCustomError

# Containers (objects and arrays) nested in one schema: 12 levels of nested object properties.
MAX_SCHEMA_DEPTH = 24
# Bytes of one schema as compact JSON.
MAX_SCHEMA_BYTES = 256 * 1024
# The largest integer a double holds without overflowing.
_MAX_DOUBLE_INT = int(sys.float_info.max)


def schema_depth(value: object, limit: int) -> int:
    """Nesting depth of dicts and lists, walked without recursion; stops counting past `limit`."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: list[object] = list(node.values())
        elif isinstance(node, list):
            children = list(node)
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        stack.extend((child, depth + 1) for child in children)
    return deepest


def _out_of_range_number(value: object) -> bool:
    """Whether an integer is too large for a double (protobuf's Struct holds numbers as doubles;
    converting one raised OverflowError, a 500). Walked without recursion, after the depth cap."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, int) and not isinstance(node, bool) and abs(node) > _MAX_DOUBLE_INT:
            return True
    return False


def check_schema(schema: object) -> object:
    """Refuse schemas over the caps, and values JSON (and so protobuf) cannot carry; runs before
    pydantic's own (recursive) validation, so any depth is refused quickly."""
    if not isinstance(schema, dict):
        return schema  # the type check names what is wrong
    if schema_depth(schema, MAX_SCHEMA_DEPTH) > MAX_SCHEMA_DEPTH:
        raise PydanticCustomError(
            "schema_too_deep", "the schema nests deeper than {limit} levels", {"limit": MAX_SCHEMA_DEPTH}
        )
    try:
        size = len(json.dumps(schema, separators=(",", ":"), allow_nan=False, ensure_ascii=False).encode())
    except (ValueError, UnicodeEncodeError) as exc:
        raise PydanticCustomError(
            "schema_not_json", "the schema is not valid JSON: {error}", {"error": str(exc)}
        ) from exc
    if size > MAX_SCHEMA_BYTES:
        raise PydanticCustomError(
            "schema_too_large", "the schema is larger than {limit} bytes", {"limit": MAX_SCHEMA_BYTES}
        )
    if _out_of_range_number(schema):
        raise PydanticCustomError("schema_number_range", "the schema holds a number too large for a double")
    return schema


ToolSchema = Annotated[dict[str, object], BeforeValidator(check_schema)]
