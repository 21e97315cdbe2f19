"""Response formats (structured output): the one place a gptoss.v1.ResponseFormat is built.

The service constrains the final answer (the analysis stays free) to a JSON schema, any JSON
object, a regex or a grammar. Callers pass a proto, a helper's result (`json_schema(...)`,
`json_object()`), or a dict in OpenAI's shapes, so the gateway and OpenAI-style code can hand over
what they already hold: chat's `{"type": "json_schema", "json_schema": {...}}`, the Responses API's
flat `{"type": "json_schema", "name": ..., "schema": ...}`, `{"type": "json_object"}`, or
`{"type": "text"}` (no format: None).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from gptoss.v1 import inference_pb2 as pb

ResponseFormatLike = Mapping[str, Any] | Any  # a dict (OpenAI shapes) or a gptoss.v1.ResponseFormat


@runtime_checkable
class SchemaModel(Protocol):
    """A pydantic model class (anything with `model_json_schema()`): its JSON schema is the format."""

    @classmethod
    def model_json_schema(cls) -> dict[str, Any]: ...


def schema_dict(schema: Mapping[str, Any] | type[SchemaModel] | SchemaModel) -> dict[str, Any]:
    """A JSON schema as a dict: a mapping as given, a pydantic model by its `model_json_schema()`."""
    if isinstance(schema, Mapping):
        return dict(schema)
    if isinstance(schema, type) and hasattr(schema, "model_json_schema"):
        return dict(schema.model_json_schema())
    raise TypeError(f"schema must be a dict or a pydantic model class, not {type(schema).__name__}")


def json_schema(
    name: str,
    schema: Mapping[str, Any] | type[SchemaModel],
    *,
    strict: bool = True,
    description: str = "",
) -> Any:
    """A ResponseFormat asking for JSON valid under `schema` (a dict or a pydantic model class).

    strict=True (the default) enforces the schema while decoding; strict=False only shows it to the
    model (Harmony's "# Response Formats" section), as OpenAI's best-effort mode does. The service
    checks the name ([a-zA-Z0-9_-]{1,64}) and the schema (INVALID_ARGUMENT naming the field).
    """
    if not isinstance(name, str) or not name:
        raise ValueError("a JSON-schema response format needs a non-empty name")
    fmt = pb.JsonSchemaFormat(name=name, description=description or "", strict=strict)
    try:
        fmt.schema.update(schema_dict(schema))
    except OverflowError as exc:  # protobuf's Struct holds numbers as doubles
        raise ValueError(f"response format {name!r}: a number in the schema is too large ({exc})") from None
    return pb.ResponseFormat(json_schema=fmt)


def json_object() -> Any:
    """A ResponseFormat asking for any JSON object (OpenAI's JSON mode)."""
    return pb.ResponseFormat(json_object=pb.JsonObjectFormat())


def regex(pattern: str) -> Any:
    """A ResponseFormat whose final text matches `pattern` (xgrammar's regex dialect)."""
    return pb.ResponseFormat(regex=pattern)


def grammar(ebnf: str) -> Any:
    """A ResponseFormat whose final text matches an EBNF grammar (xgrammar's dialect, rule `root`)."""
    return pb.ResponseFormat(grammar=ebnf)


def _from_json_schema_dict(spec: Mapping[str, Any], where: str) -> Any:
    schema = spec.get("schema")
    if not isinstance(schema, Mapping):
        raise ValueError(f"{where}.schema must be a JSON schema object")
    strict = spec.get("strict")
    if strict is not None and not isinstance(strict, bool):
        raise ValueError(f"{where}.strict must be a boolean")
    return json_schema(
        str(spec.get("name") or ""),
        schema,
        # Absent means enforced: a format nobody enforces is rarely what the caller meant.
        strict=True if strict is None else strict,
        description=str(spec.get("description") or ""),
    )


def build_response_format(raw: ResponseFormatLike | None) -> Any | None:
    """The ResponseFormat proto of `raw`, or None for no format (None or `{"type": "text"}`);
    raises ValueError naming what is wrong."""
    if raw is None or isinstance(raw, pb.ResponseFormat):
        return raw
    if isinstance(raw, type) and hasattr(raw, "model_json_schema"):
        return json_schema(raw.__name__, raw)  # a pydantic model class, named after itself
    if not isinstance(raw, Mapping):
        raise TypeError(
            f"response_format must be a dict or gptoss.v1.ResponseFormat, not {type(raw).__name__}"
        )
    kind = raw.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return json_object()
    if kind == "json_schema":
        nested = raw.get("json_schema")
        if nested is not None:  # chat's shape; otherwise the Responses API's flat one
            if not isinstance(nested, Mapping):
                raise ValueError("response_format.json_schema must be an object")
            return _from_json_schema_dict(nested, "response_format.json_schema")
        return _from_json_schema_dict(raw, "response_format")
    if kind in ("regex", "grammar"):
        value = raw.get(kind)
        if not isinstance(value, str) or not value:
            raise ValueError(f"response_format.{kind} must be a non-empty string")
        return regex(value) if kind == "regex" else grammar(value)
    raise ValueError(
        f"response_format type must be one of text, json_object, json_schema, regex, grammar; got {kind!r}"
    )
