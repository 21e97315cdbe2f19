"""The trained harmony-tiny model on the real vLLM CPU engine, through generated gRPC stubs.

Pins the behaviour contract of models/harmony-tiny/README.md (temperature 0, profile cpu-tiny)
and that unseen prompts still come back as well-formed Harmony.
"""

from __future__ import annotations

import concurrent.futures
import json
import random

import pytest
from google.protobuf import struct_pb2
from gptoss.v1 import inference_pb2 as pb
from gptoss.v1 import inference_pb2_grpc

from service.harmony.render import ChatMessage, ChatRequest, FunctionTool, render_prompt

Stub = inference_pb2_grpc.InferenceServiceStub
CITY = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
WEATHER = ("get_weather", "Get the current weather in a city.")
TIME = ("get_time", "Get the local time in a city.")


def tool(name: str, description: str) -> pb.Tool:
    parameters = struct_pb2.Struct()
    parameters.update(CITY)
    return pb.Tool(name=name, description=description, parameters=parameters)


def user(text: str) -> pb.Message:
    return pb.Message(role=pb.ROLE_USER, content=text)


class Turn:
    """One Generate call folded: reasoning, content, finished tool calls, Done."""

    def __init__(self, responses: list[pb.GenerateResponse]) -> None:
        self.kinds = [r.WhichOneof("event") for r in responses]
        self.reasoning = "".join(r.reasoning.text for r in responses if r.HasField("reasoning"))
        self.content = "".join(r.content.text for r in responses if r.HasField("content"))
        self.calls = [r.tool_call_done for r in responses if r.HasField("tool_call_done")]
        assert self.kinds.count("done") == 1 and self.kinds[-1] == "done", self.kinds
        self.done = responses[-1].done

    @property
    def clean(self) -> bool:
        return self.done.error_message == ""


def turn(
    stub: Stub, messages: list[pb.Message], tools: tuple[tuple[str, str], ...] = (), **fields: object
) -> Turn:
    request = pb.GenerateRequest(
        messages=messages,
        tools=[tool(*t) for t in tools],
        temperature=0.0,
        max_tokens=fields.pop("max_tokens", 400),  # type: ignore[arg-type]
        **fields,  # type: ignore[arg-type]
    )
    return Turn(list(stub.Generate(request, timeout=300)))


@pytest.mark.engine
def test_hi_gets_reasoning_then_a_greeting(stub: Stub) -> None:
    result = turn(stub, [user("Hi")])
    assert result.reasoning == "The user greets me. I should greet them back."
    assert result.content == "Hello! How can I help you today?"
    assert result.kinds.index("reasoning") < result.kinds.index("content")
    assert result.done.finish_reason == pb.FINISH_REASON_STOP and result.clean
    assert result.done.usage.reasoning_tokens > 0


@pytest.mark.engine
def test_weather_tool_loop(stub: Stub) -> None:
    asked = [user("What is the weather in Paris?")]
    first = turn(stub, asked, (WEATHER,))
    assert first.done.finish_reason == pb.FINISH_REASON_TOOL_CALLS and first.clean
    assert [(c.name, json.loads(c.arguments)) for c in first.calls] == [("get_weather", {"city": "Paris"})]
    assert first.content == "" and first.reasoning
    call = first.calls[0]
    history = [
        *asked,
        pb.Message(
            role=pb.ROLE_ASSISTANT,
            reasoning=first.reasoning,
            tool_calls=[pb.ToolCall(id=call.id, name=call.name, arguments=call.arguments)],
        ),
        pb.Message(role=pb.ROLE_TOOL, tool_call_id=call.id, content='{"temperature_c": 18}'),
    ]
    second = turn(stub, history, (WEATHER,))
    assert second.done.finish_reason == pb.FINISH_REASON_STOP and second.clean
    assert "18" in second.content and second.content == "It is 18 °C in Paris right now."


@pytest.mark.engine
def test_two_parallel_calls_then_the_answer(stub: Stub) -> None:
    asked = [user("What is the weather in Paris and in Tokyo?")]
    first = turn(stub, asked, (WEATHER,))
    assert first.done.finish_reason == pb.FINISH_REASON_TOOL_CALLS and first.clean
    assert [json.loads(c.arguments)["city"] for c in first.calls] == ["Paris", "Tokyo"]
    assert [c.index for c in first.calls] == [0, 1] and len({c.id for c in first.calls}) == 2
    history = [
        *asked,
        pb.Message(
            role=pb.ROLE_ASSISTANT,
            reasoning=first.reasoning,
            tool_calls=[pb.ToolCall(id=c.id, name=c.name, arguments=c.arguments) for c in first.calls],
        ),
        pb.Message(role=pb.ROLE_TOOL, tool_call_id=first.calls[0].id, content='{"temperature_c": 18}'),
        pb.Message(role=pb.ROLE_TOOL, tool_call_id=first.calls[1].id, content='{"temperature_c": 25}'),
    ]
    second = turn(stub, history, (WEATHER,))
    assert second.content == "Paris: 18 °C. Tokyo: 25 °C." and second.clean


@pytest.mark.engine
@pytest.mark.parametrize(
    ("question", "tools", "name", "city", "preamble"),
    [
        ("What is the weather in Tokyo?", (WEATHER,), "get_weather", "Tokyo", ""),  # call on analysis
        ("What is the weather in Berlin?", (WEATHER,), "get_weather", "Berlin", ""),  # to= after json
        (
            "What time is it in London?",
            (TIME, WEATHER),
            "get_time",
            "London",
            "Let me check the time in London.",
        ),
    ],
)
def test_header_variants_and_preamble_are_tool_calls(
    stub: Stub, question: str, tools: tuple[tuple[str, str], ...], name: str, city: str, preamble: str
) -> None:
    result = turn(stub, [user(question)], tools)
    assert result.clean, result.done.error_message
    assert result.done.finish_reason == pb.FINISH_REASON_TOOL_CALLS
    assert [(c.name, json.loads(c.arguments)) for c in result.calls] == [(name, {"city": city})]
    assert result.content == preamble


@pytest.mark.engine
@pytest.mark.parametrize(
    ("effort", "answer"),
    [
        (pb.REASONING_EFFORT_LOW, "4"),
        (pb.REASONING_EFFORT_MEDIUM, "2 + 2 = 4."),
        (pb.REASONING_EFFORT_HIGH, "2 + 2 = 4."),
    ],
)
def test_reasoning_effort_changes_the_reasoning(stub: Stub, effort: int, answer: str) -> None:
    result = turn(stub, [user("What is 2+2?")], reasoning_effort=effort)
    assert result.content == answer and result.clean
    lengths = {
        pb.REASONING_EFFORT_LOW: (1, 10),
        pb.REASONING_EFFORT_MEDIUM: (10, 40),
        pb.REASONING_EFFORT_HIGH: (40, 400),
    }
    low, high = lengths[effort]
    assert low <= len(result.reasoning) < high, result.reasoning


@pytest.mark.engine
@pytest.mark.parametrize(
    ("question", "answer"),
    [
        ("Say hello in Japanese.", "こんにちは！ 👋"),  # noqa: RUF001
        ("Wie geht es dir?", "Mir geht es gut, danke! Schön, dass du fragst. Ärger? Nein. Grüße aus Köln."),
    ],
)
def test_multi_byte_answers(stub: Stub, question: str, answer: str) -> None:
    result = turn(stub, [user(question)])
    assert result.content == answer and result.clean


@pytest.mark.engine
def test_long_answer_past_the_sliding_window(stub: Stub) -> None:
    result = turn(stub, [user("Count from 1 to 100.")], max_tokens=600)
    assert result.content == ", ".join(str(n) for n in range(1, 101)) + "."
    assert result.done.usage.completion_tokens > 256 and result.clean  # window: 128 tokens


@pytest.mark.engine
def test_count_tokens_equals_the_rendered_prompt(stub: Stub) -> None:
    messages = [user("What is the weather in Paris?")]
    counted = stub.CountTokens(pb.CountTokensRequest(messages=messages, tools=[tool(*WEATHER)]))
    rendered = render_prompt(
        ChatRequest(
            messages=[ChatMessage("user", "What is the weather in Paris?")],
            tools=[FunctionTool(WEATHER[0], WEATHER[1], CITY)],
        )
    )
    assert counted.prompt_tokens == len(rendered)
    done = turn(stub, messages, (WEATHER,)).done
    assert done.usage.prompt_tokens == len(rendered)


_WORDS = (
    "apple river quantum blue seven market poem engine cloud tiger violin desert coffee galaxy "
    "winter ladder python ocean mirror history garden silver planet music doctor bridge paper"
).split()


def unseen_prompt(rng: random.Random) -> str:
    kind = rng.randrange(4)
    if kind == 0:
        return " ".join(rng.choice(_WORDS) for _ in range(rng.randint(1, 12)))
    if kind == 1:
        return (
            rng.choice(["Why", "How", "What", "Where", "Can you"])
            + " "
            + " ".join(rng.sample(_WORDS, 4))
            + "?"
        )
    if kind == 2:
        return "".join(chr(rng.randint(33, 0x2FFF)) for _ in range(rng.randint(1, 20)))
    return f"Please explain {rng.choice(_WORDS)} and {rng.choice(_WORDS)} in {rng.randint(2, 900)} words."


@pytest.mark.engine
def test_unseen_prompts_get_well_formed_harmony(stub: Stub) -> None:
    rng = random.Random(20261201)
    prompts = [unseen_prompt(rng) for _ in range(100)]
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda p: turn(stub, [user(p)], max_tokens=200), prompts))
    good = [
        r.clean
        and r.done.finish_reason in (pb.FINISH_REASON_STOP, pb.FINISH_REASON_TOOL_CALLS)
        and bool(r.content or r.calls)
        for r in results
    ]
    bad = [
        (p, r.done.error_message, pb.FinishReason.Name(r.done.finish_reason))
        for p, r, ok in zip(prompts, results, good, strict=True)
        if not ok
    ]
    print(f"unseen prompts well-formed: {sum(good)}/100")
    assert sum(good) >= 95, bad[:10]
