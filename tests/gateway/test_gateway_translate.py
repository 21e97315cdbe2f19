"""Pure translation of requests: OpenAI JSON -> the client's GenerateOptions (-> GenerateRequest)."""

from __future__ import annotations

from typing import Any

import pytest
from gptoss import build_generate_request
from gptoss.v1 import inference_pb2 as pb

from gateway import _translate_chat as chat
from gateway import _translate_responses as responses
from gateway._chat_schema import ChatCompletionRequest
from gateway._errors import GatewayError
from gateway._responses_schema import ResponsesRequest

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
    return build_generate_request(
        request_id="rid", **chat.to_generate_options(ChatCompletionRequest.model_validate(body))
    )


def responses_request(**fields: Any) -> Any:
    body = {"model": "m", "input": "hi", **fields}
    return build_generate_request(
        request_id="rid", **responses.to_generate_options(ResponsesRequest.model_validate(body))
    )


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
    # The service finds the tool's name from tool_call_id (the gateway no longer looks it up).
    assert req.messages[4].tool_call_id == "call_1" and req.messages[4].name == ""
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
        ({"response_format": {"type": "json_schema"}}, "response_format.json_schema"),
        ({"top_logprobs": 3}, "top_logprobs"),
        ({"logit_bias": {"x": 5}}, "logit_bias"),
        ({"logit_bias": {"-1": 5}}, "logit_bias"),
        ({"stream_options": {"include_usage": True}}, "stream_options"),
        ({"functions": [{"name": "f"}]}, "functions"),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
            "messages[0].content[0].type",
        ),
    ],
)
def test_chat_refuses_what_it_cannot_honour(fields: dict[str, Any], param: str) -> None:
    assert refusal(chat_request, **fields).param == param


def test_chat_logprobs_and_logit_bias_reach_the_request() -> None:
    request = chat_request(logprobs=True, top_logprobs=4, logit_bias={"17": -100, "42": 2.5})
    assert request.logprobs and request.top_logprobs == 4
    assert dict(request.logit_bias) == {17: -100.0, 42: 2.5}
    assert chat_request(n=3).n == 3
    bare = chat_request()
    assert not bare.logprobs and not bare.logit_bias


def test_chat_accepts_text_response_format_and_n_1() -> None:
    chat_request(
        response_format={"type": "text"}, n=1, logprobs=False, user="u", store=True, metadata={"a": "b"}
    )


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
    assert req.messages[3].tool_call_id == "call_1" and req.messages[3].content == "rain"
    assert req.messages[4].content == "Rain."
    assert req.tool_choice.function_name == "get_weather"
    assert req.reasoning_effort == pb.REASONING_EFFORT_LOW and req.max_tokens == 33


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"text": {"format": {"type": "json_schema", "schema": {}}}}, "text.format.name"),
        ({"text": {"format": {"type": "json_schema", "name": "x"}}}, "text.format.schema"),
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


def test_responses_include_logprobs_and_refuses_other_includes() -> None:
    request = responses_request(include=["message.output_text.logprobs"], top_logprobs=3)
    assert request.logprobs and request.top_logprobs == 3
    assert not responses_request().logprobs
    assert refusal(responses_request, include=["reasoning.encrypted_content"]).param == "include[0]"
