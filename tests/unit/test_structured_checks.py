"""Response-format checks (param names, what xgrammar refuses) and the developer-message section."""

from __future__ import annotations

import re
from typing import Any

import pytest
from gptoss.v1 import inference_pb2 as pb

from service.config import Settings
from service.errors import ServiceError
from service.harmony.render import ChatMessage, ChatRequest
from service.harmony.response_formats import render_with_formats
from service.harmony.tokens import encoding
from service.planner import plan_inline
from tests.support.structured import NESTED_SCHEMA, json_schema_format, struct

SETTINGS = Settings(profile="cpu-tiny")
USER = [pb.Message(role=pb.ROLE_USER, content="hi")]


def _error(**fields: Any) -> ServiceError:
    with pytest.raises(ServiceError) as caught:
        plan_inline(pb.GenerateRequest(**{"messages": USER, **fields}), SETTINGS)
    return caught.value


def test_the_section_ends_the_developer_message() -> None:
    section = "# Response Formats\n\n## x\n\n{}"
    bare = encoding().decode(render_with_formats(ChatRequest([ChatMessage("user", "hi")]), section))
    assert f"<|end|><|start|>developer<|message|>{section}<|end|><|start|>user" in bare
    with_instructions = ChatRequest([ChatMessage("system", "Be brief."), ChatMessage("user", "hi")])
    text = encoding().decode(render_with_formats(with_instructions, section))
    assert f"# Instructions\n\nBe brief.\n\n{section}<|end|><|start|>user" in text
    assert render_with_formats(with_instructions) == render_with_formats(with_instructions, "")


def test_the_plan_renders_the_format_and_constrains_the_answer() -> None:
    plan = plan_inline(
        pb.GenerateRequest(messages=USER, response_format=json_schema_format(NESTED_SCHEMA)), SETTINGS
    )
    prompt = encoding().decode(plan.prompt_token_ids)
    assert "# Response Formats\n\n## ticket\n\n{" in prompt and '"additionalProperties":false' in prompt
    assert plan.options.structural_tag and plan.reasoning_budget is None
    # The grammar carries the analysis budget itself: xgrammar counts the tokens.
    assert _analysis_cap(plan.options.structural_tag) == SETTINGS.structured_reasoning_budget - 1
    # The default leaves the answer at least half of max_tokens.
    small = pb.GenerateRequest(
        messages=USER, response_format=json_schema_format(NESTED_SCHEMA), max_tokens=100
    )
    small_tag = plan_inline(small, SETTINGS).options.structural_tag
    assert small_tag is not None and _analysis_cap(small_tag) == 50 - 1  # + <|end|>


def _analysis_cap(tag: str) -> int:
    """The `max_tokens` of the tag's one bounded free-text element (the analysis)."""
    caps = re.findall(r'"max_tokens":(\d+)', tag)
    assert len(caps) == 1, tag
    return int(caps[0])


def test_non_strict_schema_is_only_rendered() -> None:
    fmt = json_schema_format(NESTED_SCHEMA, strict=False)
    plan = plan_inline(pb.GenerateRequest(messages=USER, response_format=fmt), SETTINGS)
    assert plan.options.structural_tag is None and plan.reasoning_budget is None
    assert "# Response Formats" in encoding().decode(plan.prompt_token_ids)


# What xgrammar 0.2.8 refuses to compile (docs/structured-output.md lists them).
REFUSED: list[dict[str, Any]] = [
    # strict mode: no additional properties, so minProperties above the declared ones is unsatisfiable
    {"type": "object", "minProperties": 1},
]


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"response_format": json_schema_format({"type": 5})}, "response_format.json_schema.schema"),
        ({"response_format": json_schema_format({}, name="")}, "response_format.json_schema.name"),
        (
            {"response_format": pb.ResponseFormat(json_schema=pb.JsonSchemaFormat(name="x"))},
            "response_format.json_schema.schema",
        ),
        ({"response_format": pb.ResponseFormat(regex="")}, "response_format.regex"),
        ({"response_format": pb.ResponseFormat(grammar="root ::= nope")}, "response_format.grammar"),
        ({"response_format": json_schema_format(REFUSED[0])}, "response_format.json_schema.schema"),
        ({"max_reasoning_tokens": -1, "response_format": json_schema_format({})}, "max_reasoning_tokens"),
        (
            {"ignore_eos": True, "response_format": pb.ResponseFormat(json_object=pb.JsonObjectFormat())},
            "ignore_eos",
        ),
    ],
)
def test_bad_requests_name_the_param(fields: dict[str, Any], param: str) -> None:
    error = _error(**fields)
    assert error.code.name == "INVALID_ARGUMENT" and error.param == param


@pytest.mark.parametrize(
    "keyword",
    [
        {"not": {"type": "integer"}},
        {"if": {"type": "integer"}},
        {"type": "array", "uniqueItems": True},
        {"allOf": [{}, {}]},
        {"$ref": "https://x/y.json"},
    ],
)
def test_keywords_decoding_cannot_enforce_are_refused(keyword: dict[str, Any]) -> None:
    schema = {"type": "object", "properties": {"not": {"type": "object", "properties": {"a": keyword}}}}
    error = _error(response_format=json_schema_format(schema))
    assert error.param == "response_format.json_schema.schema" and "cannot enforce" in error.message
    # Only rendered (strict false): nothing to enforce, nothing refused.
    plan_inline(
        pb.GenerateRequest(messages=USER, response_format=json_schema_format(schema, strict=False)), SETTINGS
    )


def test_raw_requests_refuse_structured_fields() -> None:
    raw = {"messages": [], "prompt_token_ids": [1, 2]}
    fmt = pb.ResponseFormat(json_object=pb.JsonObjectFormat())
    assert _error(**raw, response_format=fmt).param == "response_format"
    assert _error(**raw, max_reasoning_tokens=3).param == "max_reasoning_tokens"


def test_required_tool_with_an_uncompilable_schema_names_the_tool() -> None:
    bad = REFUSED[0]
    tools = [
        pb.Tool(name="ok", parameters=struct({"type": "object"})),
        pb.Tool(name="bad", parameters=struct(bad)),
    ]
    error = _error(tools=tools, tool_choice=pb.ToolChoice(mode=pb.TOOL_CHOICE_MODE_REQUIRED))
    assert error.param == "tools[1].parameters" and "xgrammar cannot compile" in error.message
    # Not strict and not required: the schema is only rendered, never compiled.
    assert (
        plan_inline(pb.GenerateRequest(messages=USER, tools=tools), SETTINGS).options.structural_tag is None
    )
