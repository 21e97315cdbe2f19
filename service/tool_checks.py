"""Pure checks of a request's tools: names, JSON schema shape, schema depth and total size.

Size and depth are capped before anything walks a schema, so a hostile schema can neither
exhaust recursion (here, in Harmony rendering, in the gateway) nor stall the event loop.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from google.protobuf.json_format import MessageToDict
from gptoss.limits import MAX_SCHEMA_DEPTH, TOOL_NAME_PATTERN
from gptoss.v1 import inference_pb2 as pb

from service.errors import invalid_argument
from service.harmony import FunctionTool

TOOL_NAME = re.compile(TOOL_NAME_PATTERN)


def tools_size(tools: Sequence[pb.Tool]) -> int:
    """Serialized bytes of all tools: names, descriptions and schemas (protobuf's C size walk)."""
    return sum(tool.ByteSize() for tool in tools)


def check_tools(tools: Sequence[pb.Tool], max_tools: int, max_tools_bytes: int) -> list[FunctionTool]:
    if len(tools) > max_tools:
        raise invalid_argument(f"at most {max_tools} tools are allowed, got {len(tools)}", "tools")
    size = tools_size(tools)
    if size > max_tools_bytes:
        raise invalid_argument(
            f"tools take {size} bytes (names, descriptions and schemas); at most {max_tools_bytes} are allowed",
            "tools",
        )
    function_tools = [_tool(tool, i) for i, tool in enumerate(tools)]
    names = [tool.name for tool in function_tools]
    if len(set(names)) != len(names):
        raise invalid_argument("tool names must be unique", "tools")
    return function_tools


def schema_depth(value: Any) -> int:
    """Nesting of objects and arrays (a bare object is 1), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children)
    return deepest


def _tool(tool: pb.Tool, index: int) -> FunctionTool:
    param = f"tools[{index}]"
    if not TOOL_NAME.match(tool.name):
        raise invalid_argument(
            f"{param}.name must match {TOOL_NAME.pattern}, got {tool.name!r}", f"{param}.name"
        )
    parameters: dict[str, Any] = MessageToDict(tool.parameters) if tool.HasField("parameters") else {}
    if parameters:
        _check_schema(parameters, f"{param}.parameters")
    return FunctionTool(name=tool.name, description=tool.description, parameters=parameters)


def _check_schema(parameters: dict[str, Any], param: str) -> None:
    depth = schema_depth(parameters)
    if depth > MAX_SCHEMA_DEPTH:
        raise invalid_argument(f"{param} is nested {depth} levels deep; at most {MAX_SCHEMA_DEPTH}", param)
    schema_type = parameters.get("type", "object")
    if schema_type != "object":
        raise invalid_argument(
            f"{param} must be a JSON schema of type object, got type {schema_type!r}", param
        )
    for key in ("properties", "$defs", "definitions"):
        if key in parameters and not isinstance(parameters[key], dict):
            raise invalid_argument(f"{param}.{key} must be an object", param)
    required = parameters.get("required", [])
    if not (isinstance(required, list) and all(isinstance(r, str) for r in required)):
        raise invalid_argument(f"{param}.required must be a list of names", param)
