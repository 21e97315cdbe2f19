"""The gateway's folds of typed events: chat chunks and Responses events while streaming, and whole
answers from the client's fold (gptoss.result); streamed and whole answers agree."""

from __future__ import annotations

import json
from typing import Any

import pytest
from gptoss import Event
from gptoss.events import event_from_proto
from gptoss.result import CompletionBuilder
from gptoss.v1 import inference_pb2 as pb
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import _translate_chat as chat
from gateway._chat_stream import ChatStream
from gateway._errors import GatewayError
from gateway._responses_events import ResponsesStream
from gateway._responses_output import whole_response
from gateway._responses_schema import ResponsesRequest
from tests.clients.fake_service import content, done, reasoning, tool_call


def typed(proto: Any) -> Event:
    """The client's typed event for a GenerateResponse (what the gateway's folds consume)."""
    event = event_from_proto(proto)
    assert event is not None
    return event


def whole(turn: CompletionBuilder, model: str = "m") -> dict[str, Any]:
    """The non-streaming chat.completion from the client's fold."""
    return chat.completion([turn.result() if turn.done else None], completion_id="c", created=1, model=model)


# --- chat: answers -------------------------------------------------------------------------------


def test_chat_completion_object() -> None:
    turn = CompletionBuilder()
    for event in [
        reasoning("hm"),
        *tool_call(0, "call_7", "get_weather", '{"city":"Oslo"}'),
        done(pb.FINISH_REASON_TOOL_CALLS),
    ]:
        turn.add(typed(event))
    obj = whole(turn)
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
    stream = ChatStream(completion_id="c", created=1, model="m", include_usage=True)
    chunks = stream.start()
    for event in [*tool_call(0, "call_1", "f", '{"a":1}'), done(pb.FINISH_REASON_TOOL_CALLS)]:
        chunks += stream.on_event(typed(event))
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
    stream = ChatStream(completion_id="c", created=1, model="m", include_usage=False)
    chunks = stream.on_event(
        typed(pb.GenerateResponse(tool_call=pb.ToolCallDelta(index=0, id="x", name="f")))
    )
    chunks += stream.on_event(
        typed(
            pb.GenerateResponse(
                tool_call_done=pb.ToolCallDone(index=0, id="x", name="f", arguments='{"k":2}')
            )
        )
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
    stream = ChatStream(completion_id="c", created=1, model="m", include_usage=False)
    with pytest.raises(GatewayError) as info:
        stream.on_event(typed(done(finish, error_message="boom")))
    assert info.value.status == status


def test_malformed_output_note_is_not_an_error() -> None:
    turn = CompletionBuilder()
    turn.add(typed(content("x")))
    turn.add(typed(done(pb.FINISH_REASON_LENGTH, error_message="malformed Harmony output: stray token")))
    obj = whole(turn)
    assert obj["choices"][0]["finish_reason"] == "length"


# --- responses: events ---------------------------------------------------------------------------


def run_responses(events: list[Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    machine = ResponsesStream(ResponsesRequest.model_validate({"model": "m", "input": "x"}), "resp_1")
    out = machine.start()
    for event in events:
        out += machine.on_event(typed(event))
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

    turn = CompletionBuilder()
    stream = ChatStream(completion_id="c", created=1, model="m", include_usage=True)
    chunks = stream.start()
    for event in events:
        turn.add(typed(event))
        chunks += stream.on_event(typed(event))
    answer = whole(turn)["choices"][0]
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
    result = turn.result()
    assert streamed_content == (answer["message"]["content"] or "")
    assert streamed_reasoning == (answer["message"]["reasoning_content"] or "")
    assert [streamed_calls[i] for i in sorted(streamed_calls)] == [c.arguments for c in result.tool_calls]
    assert chunks[-2]["choices"][0]["finish_reason"] == answer["finish_reason"]

    out, final = run_responses(events)
    assert [e["sequence_number"] for e in out] == list(range(len(out)))
    added = [e["item"]["id"] for e in out if e["type"] == "response.output_item.added"]
    finished = [e["item"]["id"] for e in out if e["type"] == "response.output_item.done"]
    assert added == finished == [item["id"] for item in final["output"]]
    text = "".join(e["delta"] for e in out if e["type"] == "response.output_text.delta")
    assert text == "".join(p["text"] for i in final["output"] if i["type"] == "message" for p in i["content"])
    assert text == result.content
    # The non-streaming Response (the client's fold) has the same output texts as the streamed one.
    request = ResponsesRequest.model_validate({"model": "m", "input": "x"})
    once = whole_response(request, "resp_1", result)
    assert once["status"] == final["status"]
    expected = ["reasoning"] * bool(result.reasoning) + ["message"] * bool(result.content)
    assert [i["type"] for i in once["output"]] == [*expected, *["function_call"] * len(result.tool_calls)]
    assert once["usage"] == final["usage"]
    json.dumps(out)  # everything is JSON-serialisable
