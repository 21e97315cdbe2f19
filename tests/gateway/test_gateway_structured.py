"""Structured output at the gateway, without an engine: OpenAI shapes -> the GenerateRequest the
service receives (the fake records it), 400s naming the param, the service's INVALID_ARGUMENT
param in each API's spelling, and text.format kept in stored responses."""

from __future__ import annotations

from typing import Any

import grpc
import httpx
import openai
import pytest
from google.protobuf import json_format
from gptoss.v1 import inference_pb2 as pb

from tests.clients.fake_service import Fail, FakeServer, Reply, content, done
from tests.gateway.test_gateway_translate import chat_request, responses_request

PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}
USER = [{"role": "user", "content": "who?"}]
CHAT_FORMAT = {"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON, "strict": True}}
FLAT_FORMAT = {"type": "json_schema", "name": "person", "schema": PERSON, "strict": True}


def schema_of(request: Any) -> dict[str, Any]:
    return json_format.MessageToDict(request.response_format.json_schema.schema)


def test_chat_json_schema_becomes_the_request_format() -> None:
    spec = {**CHAT_FORMAT["json_schema"], "description": "a person"}  # type: ignore[dict-item]
    request = chat_request(response_format={"type": "json_schema", "json_schema": spec})
    fmt = request.response_format.json_schema
    assert (fmt.name, fmt.description, fmt.strict) == ("person", "a person", True)
    assert schema_of(request) == PERSON
    assert request.max_reasoning_tokens == 0 and not request.HasField("max_reasoning_tokens")


@pytest.mark.parametrize(("strict", "enforced"), [(None, True), (True, True), (False, False)])
def test_absent_strict_is_enforced_and_false_only_renders(strict: bool | None, enforced: bool) -> None:
    spec: dict[str, Any] = {"name": "person", "schema": PERSON}
    if strict is not None:
        spec["strict"] = strict
    chat = chat_request(response_format={"type": "json_schema", "json_schema": spec})
    flat = responses_request(text={"format": {"type": "json_schema", **spec}})
    assert chat.response_format.json_schema.strict is enforced
    assert chat.response_format == flat.response_format  # both APIs build the same format


def test_json_object_text_and_the_reasoning_budget() -> None:
    assert chat_request(response_format={"type": "json_object"}).response_format.HasField("json_object")
    assert not chat_request(response_format={"type": "text"}).HasField("response_format")
    assert responses_request(text={"format": {"type": "json_object"}}).response_format.HasField("json_object")
    assert not responses_request(text={"format": {"type": "text"}}).HasField("response_format")
    for request in (chat_request(max_reasoning_tokens=0), responses_request(max_reasoning_tokens=0)):
        assert request.HasField("max_reasoning_tokens") and request.max_reasoning_tokens == 0
    assert chat_request(max_reasoning_tokens=300).max_reasoning_tokens == 300


def test_function_tools_strict_in_both_shapes() -> None:
    chat_tools = [
        {"type": "function", "function": {"name": "f", "parameters": PERSON, "strict": True}},
        {"type": "function", "function": {"name": "g"}},
    ]
    flat_tools = [
        {"type": "function", "name": "f", "parameters": PERSON, "strict": True},
        {"type": "function", "name": "g", "strict": False},
    ]
    chat = chat_request(tools=chat_tools, tool_choice="required")
    flat = responses_request(tools=flat_tools, tool_choice={"type": "function", "name": "f"})
    assert [t.strict for t in chat.tools] == [True, False] == [t.strict for t in flat.tools]
    assert chat.tool_choice.mode == pb.TOOL_CHOICE_MODE_REQUIRED
    assert (flat.tool_choice.mode, flat.tool_choice.function_name) == (pb.TOOL_CHOICE_MODE_FUNCTION, "f")


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("chat/completions", {"response_format": {"type": "json_schema"}}, "response_format.json_schema"),
        (
            "chat/completions",
            {"response_format": {"type": "json_schema", "json_schema": {"name": "p"}}},
            "response_format.json_schema.schema",
        ),
        (
            "chat/completions",
            {"response_format": {"type": "json_schema", "json_schema": {"name": "p", "schema": "x"}}},
            "response_format.json_schema.schema",
        ),
        (
            "chat/completions",
            {"response_format": {"type": "json_schema", "json_schema": {"schema": PERSON}}},
            "response_format.json_schema.name",
        ),
        ("chat/completions", {"response_format": {"type": "yaml"}}, "response_format.type"),
        ("chat/completions", {"max_reasoning_tokens": -1}, "max_reasoning_tokens"),
        ("responses", {"text": {"format": {"type": "json_schema", "name": "p"}}}, "text.format.schema"),
        ("responses", {"text": {"format": {"type": "json_schema", "schema": PERSON}}}, "text.format.name"),
        (
            "responses",
            {"text": {"format": {"type": "json_schema", "name": "p", "schema": 1}}},
            "text.format.schema",
        ),
        ("responses", {"max_reasoning_tokens": "many"}, "max_reasoning_tokens"),
    ],
)
def test_bad_formats_are_400s_naming_the_param(
    fake: FakeServer, http: httpx.Client, path: str, body: dict[str, Any], param: str
) -> None:
    base = {"model": "fake-model", **({"messages": USER} if path.startswith("chat") else {"input": "who?"})}
    response = http.post(f"/v1/{path}", json={**base, **body})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param
    assert fake.servicer.requests == []  # refused before any call


BIG = "1" + "0" * 400  # an integer no double holds: protobuf's Struct used to raise OverflowError (a 500)


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        (
            "chat/completions",
            '"tools": [{"type": "function", "function": {"name": "f", "parameters": {"maximum": %s}}}]',
            "tools[0].function.parameters",
        ),
        (
            "chat/completions",
            '"response_format": {"type": "json_schema", "json_schema": {"name": "f", "schema": {"maximum": %s}}}',
            "response_format.json_schema.schema",
        ),
        (
            "responses",
            '"text": {"format": {"type": "json_schema", "name": "f", "schema": {"maximum": %s}}}',
            "text.format.schema",
        ),
    ],
)
def test_numbers_too_large_for_protobuf_are_400s(
    fake: FakeServer, http: httpx.Client, path: str, body: str, param: str
) -> None:
    start = '"messages": [{"role": "user", "content": "x"}]' if path.startswith("chat") else '"input": "x"'
    raw = '{"model": "fake-model", ' + start + ", " + body.replace("%s", BIG) + "}"
    response = http.post(f"/v1/{path}", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param
    assert fake.servicer.requests == []


SERVICE_REFUSAL = Fail(
    grpc.StatusCode.INVALID_ARGUMENT,
    "response_format.json_schema.schema: unsupported keyword 'patternProperties'",
    "INVALID_REQUEST",
    {"param": "response_format.json_schema.schema"},
)


@pytest.mark.parametrize("stream", [False, True])
def test_the_services_refusal_names_each_apis_param(
    fake: FakeServer, fake_client: openai.OpenAI, stream: bool
) -> None:
    fake.servicer.generate_script = [SERVICE_REFUSAL, Reply([content('{"a": 1}'), done()])]
    with pytest.raises(openai.BadRequestError) as chat_error:
        fake_client.chat.completions.create(
            model="fake-model", messages=USER, response_format=CHAT_FORMAT, stream=stream
        )  # type: ignore[call-overload]
    assert chat_error.value.param == "response_format.json_schema.schema"
    assert "patternProperties" in chat_error.value.message
    fake.servicer.generate_script = [SERVICE_REFUSAL, Reply([content('{"a": 1}'), done()])]
    with pytest.raises(openai.BadRequestError) as responses_error:
        fake_client.responses.create(
            model="fake-model", input="who?", text={"format": FLAT_FORMAT}, stream=stream
        )  # type: ignore[call-overload]
    assert responses_error.value.param == "text.format.schema"
    # The next request still works.
    answer = fake_client.chat.completions.create(model="fake-model", messages=USER)  # type: ignore[arg-type]
    assert answer.choices[0].message.content == '{"a": 1}'


def test_stored_responses_keep_text_format(fake: FakeServer, fake_client: openai.OpenAI) -> None:
    fake.servicer.generate_script = [Reply([content('{"name": "Ada", "age": 36}'), done()])]
    created = fake_client.responses.create(
        model="fake-model", input="who?", text={"format": FLAT_FORMAT}, extra_body={"max_reasoning_tokens": 8}
    )
    assert fake.servicer.requests[-1].max_reasoning_tokens == 8
    for response in (created, fake_client.responses.retrieve(created.id)):
        fmt = response.text.format if response.text is not None else None
        assert fmt is not None and fmt.type == "json_schema"
        assert (fmt.name, fmt.schema_, fmt.strict) == ("person", PERSON, True)  # type: ignore[union-attr]
    plain = fake_client.responses.create(
        model="fake-model", input="hi", text={"format": {"type": "json_object"}}
    )
    assert fake_client.responses.retrieve(plain.id).text.format.type == "json_object"  # type: ignore[union-attr]
