"""Checks of response formats and strict tool schemas: INVALID_ARGUMENT naming the param, never a 500.

Two layers. Pure: shape, name, size, and the JSON-schema meta-schema (`jsonschema`). Then the
compile check: xgrammar converts the schema to a grammar here, in the service, before the
request reaches the engine, so a schema it cannot handle is refused with its reason instead of
failing (or hanging) inside the engine. The conversion needs no tokenizer (~1-10 ms) and is
cached by the content's JSON text, so a repeated schema costs one dict lookup.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

from google.protobuf.json_format import MessageToDict
from gptoss.limits import MAX_SCHEMA_DEPTH
from gptoss.v1 import inference_pb2 as pb

from service.errors import invalid_argument
from service.harmony import ChatRequest
from service.schema_support import unenforced_keyword
from service.structured_output import (
    Constraint,
    ResponseFormatSpec,
    constraint_for,
    format_content,
    json_content,
)
from service.tool_checks import schema_depth

FORMAT_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_PATTERN_CHARS = 64 << 10
_CACHE_SIZE = 1024


def response_format(fmt: pb.ResponseFormat, max_bytes: int, raw: bool) -> ResponseFormatSpec | None:
    """The checked response format of a request, or None when none is set."""
    kind = fmt.WhichOneof("format")
    if kind is None:
        return None
    if raw:
        raise invalid_argument(
            "response_format is for chat requests, not prompt_token_ids", "response_format"
        )
    size = fmt.ByteSize()
    if size > max_bytes:
        raise invalid_argument(f"response_format takes {size} bytes; at most {max_bytes}", "response_format")
    if kind == "json_object":
        spec = ResponseFormatSpec("json_object")
    elif kind in ("regex", "grammar"):
        pattern = fmt.regex if kind == "regex" else fmt.grammar
        if not pattern or len(pattern) > MAX_PATTERN_CHARS:
            raise invalid_argument(
                f"response_format.{kind} must be 1 to {MAX_PATTERN_CHARS} characters",
                f"response_format.{kind}",
            )
        spec = ResponseFormatSpec(kind, pattern=pattern)
    else:
        spec = _json_schema(fmt.json_schema)
    if spec.enforced:
        check_compiles(format_content(spec), _param(spec))
    return spec


def _param(spec: ResponseFormatSpec) -> str:
    return (
        "response_format.json_schema.schema" if spec.kind == "json_schema" else f"response_format.{spec.kind}"
    )


def _json_schema(fmt: pb.JsonSchemaFormat) -> ResponseFormatSpec:
    if not FORMAT_NAME.match(fmt.name):
        raise invalid_argument(
            f"response_format.json_schema.name must match {FORMAT_NAME.pattern}, got {fmt.name!r}",
            "response_format.json_schema.name",
        )
    if not fmt.HasField("schema"):
        raise invalid_argument(
            "response_format.json_schema.schema is required", "response_format.json_schema.schema"
        )
    schema: dict[str, Any] = MessageToDict(fmt.schema)
    check_schema(schema, "response_format.json_schema.schema")
    if fmt.strict:
        check_enforceable(schema, "response_format.json_schema.schema")
    return ResponseFormatSpec(
        "json_schema", name=fmt.name, description=fmt.description, schema=schema, enforced=fmt.strict
    )


def check_schema(schema: dict[str, Any], param: str) -> None:
    """Depth (before anything recurses into it), then the meta-schema of its `$schema` dialect."""
    depth = schema_depth(schema)
    if depth > MAX_SCHEMA_DEPTH:
        raise invalid_argument(f"{param} is nested {depth} levels deep; at most {MAX_SCHEMA_DEPTH}", param)
    import jsonschema

    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        where = "/".join(str(p) for p in exc.path)
        raise invalid_argument(
            f"{param} is not a valid JSON schema: {exc.message} (at /{where})", param
        ) from exc


def check_tool_schema(parameters: dict[str, Any], param: str) -> None:
    """A strict tool's parameters: a valid schema that xgrammar compiles."""
    check_schema(parameters, param)
    check_enforceable(parameters, param)
    check_compiles(json_content(parameters or {"type": "object"}), param)


def check_enforceable(schema: dict[str, Any], param: str) -> None:
    """Refuse keywords decoding would silently not enforce (service/schema_support.py)."""
    keyword = unenforced_keyword(schema)
    if keyword:
        raise invalid_argument(f"{param} uses a keyword structured output cannot enforce: {keyword}", param)


def check_compiles(content: dict[str, Any], param: str) -> None:
    """Raise INVALID_ARGUMENT with xgrammar's reason when the content format does not compile."""
    error = _compile_error(json.dumps(content, sort_keys=True, separators=(",", ":")))
    if error:
        raise invalid_argument(f"xgrammar cannot compile {param}: {error}", param)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _compile_error(content_json: str) -> str:
    """'' when it compiles, else xgrammar's message (cached both ways: a bad schema repeats too)."""
    import xgrammar

    tag = {"type": "structural_tag", "format": json.loads(content_json)}
    try:
        xgrammar.Grammar.from_structural_tag(json.dumps(tag))
    except Exception as exc:  # xgrammar raises RuntimeError / ValueError / pydantic errors
        return _first_line(str(exc))
    return ""


def _first_line(message: str) -> str:
    """xgrammar prefixes `[time] file.cc:line: `; keep the reason, one line, bounded."""
    line = message.strip().splitlines()[0] if message.strip() else "unknown error"
    line = re.sub(r"^\[[\d:]+\] \S+:\d+: ", "", line)
    return line[:500]


def warm_up() -> None:
    """Import xgrammar and jsonschema (~10 s on a busy CPU) and compile one schema, before serving."""
    check_compiles(json_content({"type": "object"}), "response_format")
    check_schema({"type": "object"}, "response_format")


def compile_cache_info() -> Any:
    """Hits and misses of the compile-check cache (bench/structured_cost.py reports them)."""
    return _compile_error.cache_info()


def constraint(
    request: pb.GenerateRequest, chat: ChatRequest, spec: ResponseFormatSpec | None
) -> Constraint | None:
    """The request's constraint; the schemas of the tools it enforces must compile."""
    offered = [
        tool
        for tool in chat.tools
        if chat.tool_choice != "function" or tool.name == chat.tool_choice_function
    ]
    if chat.tool_choice == "none":
        offered = []
    strict = [request.tools[_index(request, tool.name)].strict for tool in offered]
    enforce_all = chat.tool_choice in ("required", "function")
    for tool, is_strict in zip(offered, strict, strict=True):
        if enforce_all or is_strict:
            check_tool_schema(tool.parameters, f"tools[{_index(request, tool.name)}].parameters")
    found = constraint_for(spec, offered, chat.tool_choice, strict)
    if found is not None and request.ignore_eos:
        raise invalid_argument("ignore_eos cannot be combined with structured output", "ignore_eos")
    return found


def _index(request: pb.GenerateRequest, name: str) -> int:
    return next(i for i, tool in enumerate(request.tools) if tool.name == name)


def reasoning_budget(
    request: pb.GenerateRequest, constrained: bool, default: int, limit: int, max_tokens: int = 0
) -> int | None:
    """max_reasoning_tokens, else the server default when the output is constrained, else none.

    The default takes at most half of `max_tokens`, so the answer it forces has room to finish.
    """
    if not request.HasField("max_reasoning_tokens"):
        return min(default, max_tokens // 2) if constrained else None
    value = request.max_reasoning_tokens
    if not 0 <= value < limit:
        raise invalid_argument(
            f"max_reasoning_tokens must be between 0 and {limit - 1}, got {value}", "max_reasoning_tokens"
        )
    if request.prompt_token_ids:
        raise invalid_argument("max_reasoning_tokens is for chat requests", "max_reasoning_tokens")
    return value
