"""Schemas, tools and request builders shared by the structured-output tests and bench."""

from __future__ import annotations

from typing import Any

from google.protobuf import struct_pb2
from gptoss.v1 import inference_pb2 as pb

# Every string and array is bounded: inside an unbounded string, random weights (and the tiny
# model) rarely pick a closing quote, so the JSON would run to max_tokens and end "length".
NESTED_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "maxLength": 40},
        "status": {"enum": ["open", "closed", "pending"]},
        "priority": {"type": "integer", "minimum": 1, "maximum": 5},
        "items": {
            "type": "array",
            "minItems": 1,
            "maxItems": 3,
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "minLength": 1, "maxLength": 24},
                    "qty": {"type": "integer", "minimum": 0, "maximum": 99},
                },
                "required": ["name", "qty"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["title", "status", "priority", "items"],
    "additionalProperties": False,
}
WEATHER: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string", "maxLength": 24}, "unit": {"enum": ["c", "f"]}},
    "required": ["city", "unit"],
    "additionalProperties": False,
}
TIME: dict[str, Any] = {
    "type": "object",
    "properties": {"zone": {"type": "string", "maxLength": 24}, "hour24": {"type": "boolean"}},
    "required": ["zone"],
    "additionalProperties": False,
}
TOOL_SCHEMAS = {"get_weather": WEATHER, "get_time": TIME}


def struct(value: dict[str, Any]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(value)
    return out


def json_schema_format(
    schema: dict[str, Any], name: str = "ticket", strict: bool = True
) -> pb.ResponseFormat:
    return pb.ResponseFormat(json_schema=pb.JsonSchemaFormat(name=name, schema=struct(schema), strict=strict))


def tools() -> list[pb.Tool]:
    return [
        pb.Tool(name=name, description=f"{name} tool", parameters=struct(s))
        for name, s in TOOL_SCHEMAS.items()
    ]


def text_of(responses: list[pb.GenerateResponse], kind: str) -> str:
    return "".join(getattr(r, kind).text for r in responses if r.HasField(kind))
