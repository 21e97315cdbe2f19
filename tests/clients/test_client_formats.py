"""Structured output in the client: the ResponseFormat builders, tools' strict, the reasoning budget,
and that both clients and the CLI send them (fake server: it records the requests)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format
from gptoss import (
    AsyncClient,
    Client,
    build_count_tokens_request,
    build_generate_request,
    build_response_format,
    json_object,
    json_schema,
)
from gptoss.build import resolve_count_tokens_request
from gptoss.cli import ExitCode, main
from gptoss.formats import grammar, regex
from pydantic import BaseModel

from tests.clients.fake_service import FakeServer
from tests.clients.test_cli_fake import run

USER = [{"role": "user", "content": "hi"}]
PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
    "required": ["name", "age"],
}


class Person(BaseModel):
    name: str
    age: int


def schema_of(fmt: Any) -> dict[str, Any]:
    return json_format.MessageToDict(fmt.json_schema.schema)


def test_json_schema_from_a_dict_and_from_a_pydantic_model() -> None:
    fmt = json_schema("person", PERSON, description="who")
    assert fmt.WhichOneof("format") == "json_schema"
    assert (fmt.json_schema.name, fmt.json_schema.description, fmt.json_schema.strict) == (
        "person",
        "who",
        True,
    )
    assert schema_of(fmt)["required"] == ["name", "age"]
    from_model = json_schema("person", Person, strict=False)
    assert schema_of(from_model) == Person.model_json_schema() and not from_model.json_schema.strict
    assert build_response_format(Person).json_schema.name == "Person"  # a model class alone: its name


@pytest.mark.parametrize(
    "raw",
    [
        {"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON}},  # chat's shape
        {"type": "json_schema", "name": "person", "schema": PERSON},  # the Responses API's flat shape
        {"type": "json_schema", "name": "person", "schema": PERSON, "strict": True},
    ],
)
def test_openai_shapes_build_the_same_format(raw: dict[str, Any]) -> None:
    assert build_response_format(raw) == json_schema("person", PERSON)


def test_other_kinds_and_no_format() -> None:
    assert build_response_format({"type": "json_object"}) == json_object()
    assert build_response_format({"type": "text"}) is None and build_response_format(None) is None
    assert build_response_format({"type": "regex", "regex": "[0-9]+"}) == regex("[0-9]+")
    assert build_response_format({"type": "grammar", "grammar": 'root ::= "a"'}) == grammar('root ::= "a"')
    proto = json_object()
    assert build_response_format(proto) is proto


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"type": "json_schema"}, "response_format.schema"),
        ({"type": "json_schema", "json_schema": "x"}, "response_format.json_schema must be an object"),
        ({"type": "json_schema", "json_schema": {"name": "n", "schema": []}}, "json_schema.schema"),
        ({"type": "json_schema", "name": "n", "schema": {}, "strict": "yes"}, "strict"),
        ({"type": "json_schema", "schema": {}}, "non-empty name"),
        ({"type": "regex"}, "response_format.regex"),
        ({"type": "yaml"}, "'yaml'"),
    ],
)
def test_bad_formats_fail_before_any_rpc(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_response_format(raw)
    with pytest.raises(TypeError):
        build_response_format(["json_object"])


def test_numbers_no_double_holds_are_value_errors() -> None:
    with pytest.raises(ValueError, match="too large"):
        json_schema("big", {"maximum": 10**400})
    with pytest.raises(ValueError, match="too large"):
        build_generate_request(messages=USER, tools=[{"name": "f", "parameters": {"maximum": 10**400}}])


def test_requests_carry_the_format_the_budget_and_strict_tools() -> None:
    tool = {"type": "function", "function": {"name": "f", "parameters": PERSON, "strict": True}}
    request = build_generate_request(
        messages=USER, tools=[tool, {"name": "g"}], response_format=json_object(), max_reasoning_tokens=0
    )
    assert request.HasField("response_format") and request.response_format.HasField("json_object")
    assert request.HasField("max_reasoning_tokens") and request.max_reasoning_tokens == 0  # 0 is sent
    assert [t.strict for t in request.tools] == [True, False]
    bare = build_generate_request(messages=USER)
    assert not bare.HasField("response_format") and not bare.HasField("max_reasoning_tokens")
    with pytest.raises(ValueError, match="strict"):
        build_generate_request(messages=USER, tools=[{"name": "f", "strict": "yes"}])


def test_count_tokens_renders_the_format_too() -> None:
    fmt = json_schema("person", PERSON)
    assert build_count_tokens_request(messages=USER, response_format=fmt).response_format == fmt
    # A GenerateRequest counted: its format comes along (an absent one stays absent).
    counted = resolve_count_tokens_request(build_generate_request(messages=USER, response_format=fmt), {})
    assert counted.response_format == fmt
    plain = resolve_count_tokens_request(build_generate_request(messages=USER), {})
    assert not plain.HasField("response_format")


def test_both_clients_send_the_format_and_the_budget(fake: FakeServer) -> None:
    with Client(fake.target) as client:
        client.complete(messages=USER, response_format=json_schema("person", Person), max_reasoning_tokens=64)
    sent = fake.servicer.requests[0]
    assert sent.response_format.json_schema.name == "person" and sent.max_reasoning_tokens == 64


async def test_the_async_client_sends_the_format(fake: FakeServer) -> None:
    async with AsyncClient(fake.target) as client:
        await client.complete(messages=USER, response_format={"type": "json_object"})
    assert fake.servicer.requests[0].response_format == json_object()


def test_cli_json_schema_file_and_budget(fake: FakeServer, tmp_path: Path) -> None:
    schema = tmp_path / "person.json"
    schema.write_text(json.dumps(PERSON))
    argv = ["chat", "--target", fake.target, "--json-schema", str(schema), "--max-reasoning-tokens", "0"]
    code, _, err = run([*argv, "who?"])
    assert code == ExitCode.OK, err
    sent = fake.servicer.requests[0]
    assert sent.response_format == json_schema("person", PERSON)  # named after the file
    assert sent.HasField("max_reasoning_tokens") and sent.max_reasoning_tokens == 0
    wrapped = tmp_path / "wrapped.json"
    wrapped.write_text(json.dumps({"name": "p", "schema": PERSON, "strict": False}))
    assert run(["chat", "--target", fake.target, "--json-schema", str(wrapped), "who?"])[0] == 0
    assert fake.servicer.requests[1].response_format == json_schema("p", PERSON, strict=False)
    renamed = ["--json-schema", str(schema), "--schema-name", "human"]
    assert run(["count-tokens", "--target", fake.target, *renamed, "who?"])[0] == 0
    assert fake.servicer.requests[2].response_format.json_schema.name == "human"
    assert run(["chat", "--target", fake.target, "--json-object", "who?"])[0] == 0
    assert fake.servicer.requests[-1].response_format == json_object()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{nope", "is not JSON"),
        ("[1]", "must hold a JSON object"),
        (json.dumps({"name": "p", "schema": PERSON, "strict": "x"}), "'strict'"),
        (None, "cannot read"),
    ],
)
def test_cli_bad_schema_files_are_usage_errors(
    fake: FakeServer, tmp_path: Path, content: str | None, message: str
) -> None:
    path = tmp_path / "schema.json"
    if content is not None:
        path.write_text(content)
    code, _, err = run(["chat", "--target", fake.target, "--json-schema", str(path), "hi"])
    assert code == ExitCode.USAGE and message in err
    assert fake.servicer.requests == []


@pytest.mark.parametrize(
    "flags", [["--json-schema", "s.json", "--json-object"], ["--max-reasoning-tokens", "-1"]]
)
def test_cli_format_flag_errors_exit_2(flags: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["chat", *flags, "hi"])
    assert info.value.code == ExitCode.USAGE and "error:" in capsys.readouterr().err


def test_cli_schema_name_needs_a_schema(fake: FakeServer) -> None:
    code, _, err = run(["chat", "--target", fake.target, "--schema-name", "x", "hi"])
    assert code == ExitCode.USAGE and "--json-schema" in err
    assert fake.servicer.requests == []
