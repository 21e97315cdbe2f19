"""Pure translation: OpenAI JSON -> GenerateRequest, and service events -> OpenAI objects and stream events."""

from __future__ import annotations

import json
from typing import Any

import pytest
from gptoss.v1 import inference_pb2 as pb
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import _translate_chat as chat
from gateway import _translate_responses as responses
from gateway._chat_schema import ChatCompletionRequest
from gateway._errors import GatewayError
from gateway._responses_events import ResponsesStream
from gateway._responses_schema import ResponsesRequest
from gateway._translate_common import Turn
from tests.clients.fake_service import content, done, reasoning, tool_call

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def chat_request(**fields: Any) -> Any:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], **fields}
    return chat.to_generate_request(ChatCompletionRequest.model_validate(body), "rid")


def responses_request(**fields: Any) -> Any:
    body = {"model": "m", "input": "hi", **fields}
    return responses.to_generate_request(ResponsesRequest.model_validate(body), "rid")


def refusal(fn: Any, **fields: Any) -> GatewayError:
    with pytest.raises(GatewayError) as info:
        fn(**fields)
    assert info.value.status == 400
    return info.value


# --- chat: request -------------------------------------------------------------------------------


def test_chat_conversation_with_tool_round_trip() -> None:
    req = chat_request(
        messages=[
            {"role": "system", "content": "be brief"},
            {"role": "developer", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
            {"role": "user", "content": "weather?"},
            {
                "role": "assistant",
                "content": None,
                "reasoning_content": "need a tool",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"P"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
            {"role": "assistant", "content": "Sunny.", "reasoning": "old-era field"},
        ],
        tools=[WEATHER],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        reasoning_effort="high",
    )
    roles = [m.role for m in req.messages]
    assert roles == [
        pb.ROLE_SYSTEM,
        pb.ROLE_DEVELOPER,
        pb.ROLE_USER,
        pb.ROLE_ASSISTANT,
        pb.ROLE_TOOL,
        pb.ROLE_ASSISTANT,
    ]
    assert req.messages[1].content == "a\nb"
    assert req.messages[3].reasoning == "need a tool"
    assert list(req.messages[3].tool_calls) == [
        pb.ToolCall(id="call_1", name="get_weather", arguments='{"city":"P"}')
    ]
    assert req.messages[4].tool_call_id == "call_1" and req.messages[4].name == "get_weather"
    assert req.messages[5].reasoning == "old-era field"
    assert req.tools[0].name == "get_weather"
    assert req.tools[0].parameters["properties"]["city"]["type"] == "string"
    assert req.tool_choice == pb.ToolChoice(mode=pb.TOOL_CHOICE_MODE_FUNCTION, function_name="get_weather")
    assert req.reasoning_effort == pb.REASONING_EFFORT_HIGH
    assert req.request_id == "rid" and req.model == "m"


def test_chat_sampling_fields() -> None:
    req = chat_request(
        max_tokens=5,
        max_completion_tokens=9,
        temperature=0.0,
        top_p=0.5,
        seed=-3,
        stop="END",
        presence_penalty=1.5,
        frequency_penalty=-1.0,
        top_k=4,
        min_p=0.1,
    )
    assert req.max_tokens == 9  # max_completion_tokens wins
    assert req.HasField("temperature") and req.temperature == 0.0
    assert (req.top_p, req.seed, list(req.stop), req.top_k) == (0.5, -3, ["END"], 4)
    assert req.presence_penalty == 1.5 and req.frequency_penalty == -1.0
    assert req.min_p == pytest.approx(0.1)
    bare = chat_request()
    for field in ("max_tokens", "temperature", "top_p", "seed", "presence_penalty", "top_k"):
        assert not bare.HasField(field), field
    assert chat_request(max_tokens=7).max_tokens == 7
    assert chat_request(ignore_eos=True).ignore_eos and not bare.ignore_eos  # vLLM extension, for benchmarks
    assert not bare.HasField("tool_choice")
    assert chat_request(tools=[WEATHER], tool_choice="none").tool_choice.mode == pb.TOOL_CHOICE_MODE_NONE


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"n": 2}, "n"),
        ({"response_format": {"type": "json_object"}}, "response_format"),
        ({"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}}, "response_format"),
        ({"logprobs": True}, "logprobs"),
        ({"logit_bias": {"1": 5}}, "logit_bias"),
        ({"stream_options": {"include_usage": True}}, "stream_options"),
        ({"functions": [{"name": "f"}]}, "functions"),
        ({"tool_choice": "required"}, "tool_choice"),
        (
            {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}},
            "tool_choice",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
            "messages[0].content[0].type",
        ),
    ],
)
def test_chat_refuses_what_it_cannot_honour(fields: dict[str, Any], param: str) -> None:
    assert refusal(chat_request, **fields).param == param


def test_chat_accepts_text_response_format_and_n_1() -> None:
    chat_request(
        response_format={"type": "text"}, n=1, logprobs=False, user="u", store=True, metadata={"a": "b"}
    )


# --- chat: answers -------------------------------------------------------------------------------


def test_chat_completion_object() -> None:
    turn = Turn()
    for event in [
        reasoning("hm"),
        *tool_call(0, "call_7", "get_weather", '{"city":"Oslo"}'),
        done(pb.FINISH_REASON_TOOL_CALLS),
    ]:
        turn.add(event)
    obj = chat.completion(turn, completion_id="chatcmpl-1", created=1, model="m")
    message = obj["choices"][0]["message"]
    assert message["content"] is None
    assert message["reasoning_content"] == message["reasoning"] == "hm"
    assert message["tool_calls"] == [
        {
            "id": "call_7",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
        }
    ]
    assert obj["choices"][0]["finish_reason"] == "tool_calls"
    assert obj["usage"] == {
        "prompt_tokens": 11,
        "completion_tokens": 7,
        "total_tokens": 18,
        "prompt_tokens_details": {"cached_tokens": 2},
        "completion_tokens_details": {"reasoning_tokens": 3},
    }


def test_chat_stream_tool_call_deltas_are_openai_shaped() -> None:
    stream = chat.ChatStream(completion_id="c", created=1, model="m", include_usage=True)
    chunks = [stream.start()]
    for event in [*tool_call(0, "call_1", "f", '{"a":1}'), done(pb.FINISH_REASON_TOOL_CALLS)]:
        chunks += stream.on_event(event)
    deltas = [c["choices"][0]["delta"] if c["choices"] else None for c in chunks]
    assert deltas == [
        {"role": "assistant", "content": ""},
        {
            "tool_calls": [
                {"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": ""}}
            ]
        },
        {"tool_calls": [{"index": 0, "function": {"arguments": '{"a'}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": '":1}'}}]},
        {},
        None,
    ]
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert all(c["usage"] is None for c in chunks[:-1])
    assert chunks[-1]["usage"]["completion_tokens_details"] == {"reasoning_tokens": 3}


def test_chat_stream_fills_in_arguments_only_sent_at_done() -> None:
    stream = chat.ChatStream(completion_id="c", created=1, model="m", include_usage=False)
    chunks = stream.on_event(pb.GenerateResponse(tool_call=pb.ToolCallDelta(index=0, id="x", name="f")))
    chunks += stream.on_event(
        pb.GenerateResponse(tool_call_done=pb.ToolCallDone(index=0, id="x", name="f", arguments='{"k":2}'))
    )
    assert chunks[-1]["choices"][0]["delta"] == {
        "tool_calls": [{"index": 0, "function": {"arguments": '{"k":2}'}}]
    }
    assert "usage" not in chunks[-1]


@pytest.mark.parametrize(
    ("finish", "status"),
    [(pb.FINISH_REASON_ERROR, 500), (pb.FINISH_REASON_CANCELLED, 503)],
)
def test_failed_turns_become_errors(finish: int, status: int) -> None:
    stream = chat.ChatStream(completion_id="c", created=1, model="m", include_usage=False)
    with pytest.raises(GatewayError) as info:
        stream.on_event(done(finish, error_message="boom"))
    assert info.value.status == status


def test_malformed_output_note_is_not_an_error() -> None:
    turn = Turn()
    turn.add(content("x"))
    turn.add(done(pb.FINISH_REASON_LENGTH, error_message="malformed Harmony output: stray token"))
    obj = chat.completion(turn, completion_id="c", created=1, model="m")
    assert obj["choices"][0]["finish_reason"] == "length"


# --- responses: request --------------------------------------------------------------------------


def test_responses_items_become_messages() -> None:
    req = responses_request(
        instructions="be kind",
        input=[
            {"role": "user", "content": "weather in Oslo?"},
            {
                "type": "reasoning",
                "id": "rs_1",
                "summary": [],
                "content": [{"type": "reasoning_text", "text": "tool"}],
            },
            {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "rain"},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Rain."}]},
            {"role": "user", "content": [{"type": "input_text", "text": "thanks"}]},
        ],
        tools=[{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}],
        tool_choice={"type": "function", "name": "get_weather"},
        reasoning={"effort": "low"},
        max_output_tokens=33,
    )
    assert [m.role for m in req.messages] == [
        pb.ROLE_DEVELOPER,
        pb.ROLE_USER,
        pb.ROLE_ASSISTANT,
        pb.ROLE_TOOL,
        pb.ROLE_ASSISTANT,
        pb.ROLE_USER,
    ]
    assert req.messages[0].content == "be kind"
    turn = req.messages[2]
    assert turn.reasoning == "tool" and [c.id for c in turn.tool_calls] == ["call_1"]
    assert req.messages[3].name == "get_weather" and req.messages[3].content == "rain"
    assert req.messages[4].content == "Rain."
    assert req.tool_choice.function_name == "get_weather"
    assert req.reasoning_effort == pb.REASONING_EFFORT_LOW and req.max_tokens == 33


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"previous_response_id": "resp_1"}, "previous_response_id"),
        ({"text": {"format": {"type": "json_schema", "name": "x", "schema": {}}}}, "text.format"),
        ({"background": True}, "background"),
        ({"truncation": "auto"}, "truncation"),
        ({"input": [{"type": "item_reference", "id": "x"}]}, "input[0].type"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]},
            "input[0].content[0].type",
        ),
        ({"input": []}, "input"),
    ],
)
def test_responses_refuses_what_it_cannot_honour(fields: dict[str, Any], param: str) -> None:
    assert refusal(responses_request, **fields).param == param


# --- responses: events ---------------------------------------------------------------------------


def run_responses(events: list[Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    machine = ResponsesStream(ResponsesRequest.model_validate({"model": "m", "input": "x"}), "resp_1")
    out = machine.start()
    for event in events:
        out += machine.on_event(event)
    assert machine.final is not None
    return out, machine.final


def test_responses_event_sequence() -> None:
    out, final = run_responses(
        [
            reasoning("r1"),
            reasoning("r2"),
            content("hi"),
            *tool_call(0, "call_1", "f", "{}"),
            done(pb.FINISH_REASON_TOOL_CALLS),
        ]
    )
    assert [e["type"] for e in out] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.reasoning_text.delta",
        "response.reasoning_text.delta",
        "response.reasoning_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [item["type"] for item in final["output"]] == ["reasoning", "message", "function_call"]
    assert final["output"][0]["content"] == [{"type": "reasoning_text", "text": "r1r2"}]
    assert final["output"][2]["call_id"] == "call_1"
    assert final["usage"]["output_tokens_details"] == {"reasoning_tokens": 3}
    assert final["status"] == "completed"


def test_responses_incomplete_on_length() -> None:
    out, final = run_responses([content("cut"), done(pb.FINISH_REASON_LENGTH)])
    assert out[-1]["type"] == "response.incomplete"
    assert final["status"] == "incomplete"
    assert final["incomplete_details"] == {"reason": "max_output_tokens"}
    assert final["output"][0]["status"] == "incomplete"


# --- property: streamed and whole answers agree ---------------------------------------------------

pieces = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=6)
event_lists = st.lists(
    st.one_of(
        st.builds(reasoning, pieces),
        st.builds(content, pieces),
        st.builds(lambda i, a: tool_call(i, f"call_{i}", f"fn{i}", a), st.integers(0, 2), pieces),
    ),
    max_size=12,
)


def _flatten(items: list[Any]) -> list[Any]:
    flat: list[Any] = []
    for item in items:
        flat += item if isinstance(item, list) else [item]
    return flat


@settings(max_examples=150, deadline=None)
@given(
    event_lists,
    st.sampled_from([pb.FINISH_REASON_STOP, pb.FINISH_REASON_LENGTH, pb.FINISH_REASON_TOOL_CALLS]),
)
def test_stream_and_whole_agree(items: list[Any], finish: int) -> None:
    # One call per index, as the service guarantees.
    seen: set[int] = set()
    events = []
    for item in items:
        if isinstance(item, list):
            index = item[0].tool_call.index
            if index in seen:
                continue
            seen.add(index)
        events.append(item)
    events = [*_flatten(events), done(finish)]

    turn = Turn()
    stream = chat.ChatStream(completion_id="c", created=1, model="m", include_usage=True)
    chunks = [stream.start()]
    for event in events:
        turn.add(event)
        chunks += stream.on_event(event)
    whole = chat.completion(turn, completion_id="c", created=1, model="m")["choices"][0]
    streamed_content = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    streamed_reasoning = "".join(
        c["choices"][0]["delta"].get("reasoning_content", "") for c in chunks if c["choices"]
    )
    streamed_calls: dict[int, str] = {}
    for c in chunks:
        for call in (c["choices"][0]["delta"].get("tool_calls") or []) if c["choices"] else []:
            streamed_calls[call["index"]] = (
                streamed_calls.get(call["index"], "") + call["function"]["arguments"]
            )
    assert streamed_content == (whole["message"]["content"] or "")
    assert streamed_reasoning == (whole["message"]["reasoning_content"] or "")
    assert streamed_calls == {i: turn.tool_calls[i].arguments for i in turn.tool_calls}
    assert chunks[-2]["choices"][0]["finish_reason"] == whole["finish_reason"]

    out, final = run_responses(events)
    assert [e["sequence_number"] for e in out] == list(range(len(out)))
    added = [e["item"]["id"] for e in out if e["type"] == "response.output_item.added"]
    finished = [e["item"]["id"] for e in out if e["type"] == "response.output_item.done"]
    assert added == finished == [item["id"] for item in final["output"]]
    text = "".join(e["delta"] for e in out if e["type"] == "response.output_text.delta")
    assert text == "".join(p["text"] for i in final["output"] if i["type"] == "message" for p in i["content"])
    assert text == turn.content
    json.dumps(out)  # everything is JSON-serialisable
