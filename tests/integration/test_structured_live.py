"""Structured output on the real cpu-tiny engine at temperature 1.0: the grammar, not the model,
guarantees valid JSON and enforced tool calls (issue 13)."""

from __future__ import annotations

import concurrent.futures
import json

import grpc
import jsonschema
import pytest
from gptoss.v1 import inference_pb2 as pb
from gptoss.v1 import inference_pb2_grpc

from tests.conftest import wait_until
from tests.integration.test_generate_live import assert_well_formed, error_info
from tests.support.server_thread import ServerThread
from tests.support.structured import (
    NESTED_SCHEMA,
    TOOL_SCHEMAS,
    json_schema_format,
    text_of,
    tools,
)

ASK = [pb.Message(role=pb.ROLE_USER, content="File a ticket for the broken printer.")]
# Free analysis first (capped), then the constrained part; bounded schemas fit well within this.
SAMPLED = {"temperature": 1.0, "max_tokens": 600, "max_reasoning_tokens": 32}


def _many(
    stub: inference_pb2_grpc.InferenceServiceStub, request: pb.GenerateRequest, count: int = 50
) -> list[list[pb.GenerateResponse]]:
    def one(seed: int) -> list[pb.GenerateResponse]:
        seeded = pb.GenerateRequest()
        seeded.CopyFrom(request)
        seeded.seed = seed
        return list(stub.Generate(seeded, timeout=300))

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        return list(pool.map(one, range(count)))


def _kinds(events: list[pb.GenerateResponse]) -> list[str]:
    """The event kinds in order, each run collapsed: e.g. ['reasoning', 'content', 'done']."""
    kinds = [str(event.WhichOneof("event")) for event in events]
    return [kind for i, kind in enumerate(kinds) if i == 0 or kinds[i - 1] != kind]


@pytest.mark.engine
def test_fifty_nested_schema_answers_all_validate(stub: inference_pb2_grpc.InferenceServiceStub) -> None:
    request = pb.GenerateRequest(messages=ASK, response_format=json_schema_format(NESTED_SCHEMA), **SAMPLED)
    results = _many(stub, request)
    reasoned = 0
    for events in results:
        done = assert_well_formed(events)
        assert done.finish_reason == pb.FINISH_REASON_STOP, done
        jsonschema.validate(json.loads(text_of(events, "content")), NESTED_SCHEMA)
        # Reasoning, when the model writes some, streams before the constrained answer.
        assert _kinds(events) in (["content", "done"], ["reasoning", "content", "done"]), _kinds(events)
        reasoned += _kinds(events)[0] == "reasoning"
        assert done.usage.reasoning_tokens <= SAMPLED["max_reasoning_tokens"]
    assert reasoned > 0  # the analysis stays free: the tiny model does reason


def _calls(events: list[pb.GenerateResponse]) -> list[pb.ToolCallDone]:
    return [event.tool_call_done for event in events if event.HasField("tool_call_done")]


@pytest.mark.engine
def test_fifty_required_tool_choices_all_call_a_tool_with_valid_arguments(
    stub: inference_pb2_grpc.InferenceServiceStub,
) -> None:
    choice = pb.ToolChoice(mode=pb.TOOL_CHOICE_MODE_REQUIRED)
    results = _many(stub, pb.GenerateRequest(messages=ASK, tools=tools(), tool_choice=choice, **SAMPLED))
    for events in results:
        done = assert_well_formed(events)
        assert done.finish_reason == pb.FINISH_REASON_TOOL_CALLS, done
        (call,) = _calls(events)
        jsonschema.validate(json.loads(call.arguments), TOOL_SCHEMAS[call.name])


@pytest.mark.engine
def test_named_tool_choice_always_calls_that_tool(stub: inference_pb2_grpc.InferenceServiceStub) -> None:
    choice = pb.ToolChoice(mode=pb.TOOL_CHOICE_MODE_FUNCTION, function_name="get_time")
    results = _many(stub, pb.GenerateRequest(messages=ASK, tools=tools(), tool_choice=choice, **SAMPLED), 20)
    for events in results:
        done = assert_well_formed(events)
        assert done.finish_reason == pb.FINISH_REASON_TOOL_CALLS, done
        (call,) = _calls(events)
        assert call.name == "get_time"
        jsonschema.validate(json.loads(call.arguments), TOOL_SCHEMAS["get_time"])


@pytest.mark.engine
@pytest.mark.parametrize(
    "fmt",
    [pb.ResponseFormat(regex=r"[\s\S]{1,40}"), pb.ResponseFormat(grammar="root ::= [^\\x01]{1,40}")],
    ids=["regex", "grammar"],
)
def test_any_character_formats_answer_in_text_only(
    stub: inference_pb2_grpc.InferenceServiceStub, fmt: pb.ResponseFormat
) -> None:
    """Formats that admit any character, served end to end on the 0xFF-marked tokenizer. The trained
    tiny model writes no control token there either way; the unit test on the grammar
    (test_any_character_patterns_never_spell_a_special_token) is what pins the mark."""
    results = _many(stub, pb.GenerateRequest(messages=ASK, response_format=fmt, **SAMPLED), 10)
    for events in results:
        done = assert_well_formed(events)
        assert done.finish_reason == pb.FINISH_REASON_STOP, done
        content = text_of(events, "content")
        assert 1 <= len(content) <= 40 and "<|" not in content, content
        assert _kinds(events)[-2:] == ["content", "done"], _kinds(events)


@pytest.mark.engine
def test_cancel_mid_grammar_aborts_the_engine_request(
    stub: inference_pb2_grpc.InferenceServiceStub, live_server: ServerThread
) -> None:
    request = pb.GenerateRequest(
        messages=ASK,
        response_format=json_schema_format({"type": "object"}),
        max_tokens=2000,
        max_reasoning_tokens=0,
    )
    call = stub.Generate(request, timeout=300)
    next(iter(call))
    call.cancel()
    engine = live_server.engine
    assert engine is not None
    assert wait_until(lambda: engine.num_unfinished_requests() == 0, timeout=30)


@pytest.mark.engine
@pytest.mark.parametrize(
    ("fmt", "param", "words"),
    [
        (
            json_schema_format({"type": "object", "properties": {"a": {"type": 7}}}),
            "response_format.json_schema.schema",
            "not a valid JSON schema",
        ),
        (
            json_schema_format({"type": "object"}, name="bad name!"),
            "response_format.json_schema.name",
            "name",
        ),
        (pb.ResponseFormat(regex="("), "response_format.regex", "xgrammar cannot compile"),
        (
            pb.ResponseFormat(grammar="root ::= undefined_rule"),
            "response_format.grammar",
            "xgrammar cannot compile",
        ),
    ],
)
def test_bad_formats_are_invalid_argument(
    stub: inference_pb2_grpc.InferenceServiceStub, fmt: pb.ResponseFormat, param: str, words: str
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        list(stub.Generate(pb.GenerateRequest(messages=ASK, response_format=fmt), timeout=60))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(caught.value).metadata["param"] == param
    assert words in (caught.value.details() or "")


@pytest.mark.engine
def test_count_tokens_counts_the_response_format(stub: inference_pb2_grpc.InferenceServiceStub) -> None:
    plain = stub.CountTokens(pb.CountTokensRequest(messages=ASK)).prompt_tokens
    fmt = json_schema_format(NESTED_SCHEMA)
    counted = stub.CountTokens(pb.CountTokensRequest(messages=ASK, response_format=fmt)).prompt_tokens
    done = assert_well_formed(
        list(stub.Generate(pb.GenerateRequest(messages=ASK, response_format=fmt, max_tokens=1), timeout=60))
    )
    assert counted > plain + 20 and done.usage.prompt_tokens == counted
