"""Pure request pieces both APIs share: text of content parts, tools and tool_choice as client options.

The gateway translates OpenAI shapes into `gptoss.GenerateOptions` and leaves the checks of the
contract (tool-name pattern, stop strings, tool_choice against the tools, tool names by
tool_call_id) to the service, whose INVALID_ARGUMENT (with its param) comes back as a 400.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Protocol

from gateway._errors import invalid_request

# What gptoss.build accepts for one message / tool / tool_choice: plain JSON-like dicts.
MessageDict = dict[str, object]
ToolDict = dict[str, object]
ToolChoiceOption = str | dict[str, str]
FormatDict = dict[str, object]  # what gptoss.formats.build_response_format reads


class TextPart(Protocol):
    @property
    def type(self) -> str: ...
    @property
    def text(self) -> str | None: ...


def new_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex}"


def tool(
    name: str, description: str | None, parameters: Mapping[str, object] | None, strict: bool | None
) -> ToolDict:
    """A tool as the client builds it; the schema's depth, size and JSON were checked by pydantic.
    `strict` (absent: false, as OpenAI's chat API) constrains the arguments whenever it is called."""
    out: ToolDict = {"name": name, "description": description or "", "strict": bool(strict)}
    if parameters is not None:
        out["parameters"] = dict(parameters)
    return out


def tool_choice(choice: str | None, function_name: str | None) -> ToolChoiceOption | None:
    """`auto` / `none` / `required`, or a named function; the service checks it against the tools."""
    if function_name is not None:
        return {"name": function_name}
    return choice


def json_schema_format(
    name: str | None,
    description: str | None,
    schema: Mapping[str, object] | None,
    strict: bool | None,
    param: str,
) -> FormatDict:
    """A json_schema response format in gptoss.formats' shape; `param` prefixes the missing field's name.
    strict absent means enforced: an OpenAI client asking for a schema wants it followed."""
    if name is None:
        raise invalid_request(f"Missing required parameter: '{param}.name'.", f"{param}.name")
    if schema is None:
        raise invalid_request(f"Missing required parameter: '{param}.schema'.", f"{param}.schema")
    spec: dict[str, object] = {"name": name, "schema": dict(schema), "strict": strict is not False}
    if description:
        spec["description"] = description
    return {"type": "json_schema", "json_schema": spec}


def check_text(value: object, param: str) -> None:
    """Fields only echoed back (never sent to the service) must still be encodable as UTF-8."""
    try:
        json.dumps(value, ensure_ascii=False, allow_nan=False).encode()
    except (UnicodeEncodeError, ValueError) as exc:
        raise invalid_request(f"{param} is not valid JSON text", param) from exc


def text_of(parts: str | Sequence[TextPart] | None, param: str, accepted: tuple[str, ...]) -> str:
    """Text of string-or-parts content; non-text parts (images, audio, files) are refused clearly."""
    if parts is None:
        return ""
    if isinstance(parts, str):
        return parts
    texts: list[str] = []
    for index, part in enumerate(parts):
        if part.type not in accepted or part.text is None:
            raise invalid_request(
                f"content part type {part.type!r} is not supported; only {', '.join(accepted)} parts are",
                f"{param}[{index}].type",
            )
        texts.append(part.text)
    return "\n".join(texts)
