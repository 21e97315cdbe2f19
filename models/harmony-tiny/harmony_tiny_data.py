"""The whole training set of the harmony-tiny model: conversations in, the exact Harmony reply out.

Each example is a `ChatRequest` (rendered by the service's own `render_prompt`, so what is trained
is what is served) and the assistant messages the model must produce after `<|start|>assistant`.
A reply is a list of `Say` messages; `header` overrides the canonical header text for the header
variants real models produce (recipient in the role part, after the content type). The README
beside this file states the behaviour these examples fix.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.harmony.render import ChatMessage, ChatRequest, Effort, FunctionTool, ToolCallRecord

WEATHER = FunctionTool(
    "get_weather",
    "Get the current weather in a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
TIME = FunctionTool(
    "get_time",
    "Get the local time in a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


@dataclass(frozen=True)
class Say:
    """One assistant message: channel, text, optional function recipient, optional header override.

    `last_call=False` ends a tool call with `<|end|>` instead of `<|call|>`, so a second call can
    follow in the same turn (parallel calls: the engine stops at `<|call|>`).
    """

    channel: str
    text: str
    recipient: str = ""
    header: str = ""
    last_call: bool = True


@dataclass(frozen=True)
class Example:
    name: str
    request: ChatRequest
    reply: tuple[Say, ...]


def _ask(text: str, *, effort: Effort = "medium", tools: tuple[FunctionTool, ...] = ()) -> ChatRequest:
    return ChatRequest(messages=[ChatMessage("user", text)], tools=tools, reasoning_effort=effort)


def _call(call_id: str, name: str, arguments: str) -> ToolCallRecord:
    return ToolCallRecord(call_id, name, arguments)


GREETING = (
    Say("analysis", "The user greets me. I should greet them back."),
    Say("final", "Hello! How can I help you today?"),
)
REFUSAL = (
    Say("analysis", "This is not something I was trained on. I should say so politely."),
    Say("final", 'Sorry, I am a tiny demo model and cannot help with that. Try asking "Hi".'),
)
PARIS_CALL = '{"city": "Paris"}'
TOKYO_CALL = '{"city": "Tokyo"}'
COUNT_TO = 100

_PARIS_ASKED = ChatMessage("user", "What is the weather in Paris?")
_PARIS_CALLED = ChatMessage(
    "assistant",
    reasoning="The user wants the weather in Paris. I will call get_weather.",
    tool_calls=(_call("call_paris", "get_weather", PARIS_CALL),),
)
_BOTH_ASKED = ChatMessage("user", "What is the weather in Paris and in Tokyo?")
_BOTH_CALLED = ChatMessage(
    "assistant",
    reasoning="Two cities: I will call get_weather for Paris and for Tokyo.",
    tool_calls=(_call("call_p", "get_weather", PARIS_CALL), _call("call_t", "get_weather", TOKYO_CALL)),
)
_TIME_ASKED = ChatMessage("user", "What time is it in London?")
_TIME_CALLED = ChatMessage(
    "assistant",
    reasoning="The user wants the time in London. I will call get_time.",
    content="Let me check the time in London.",
    channel="commentary",
    tool_calls=(_call("call_london", "get_time", '{"city": "London"}'),),
)

EXAMPLES: tuple[Example, ...] = (
    Example("hi", _ask("Hi"), GREETING),
    Example("hello", _ask("Hello"), GREETING),
    Example("hi-with-tools", _ask("Hi", tools=(WEATHER,)), GREETING),
    Example(
        "sum-low",
        _ask("What is 2+2?", effort="low"),
        (Say("analysis", "Easy."), Say("final", "4")),
    ),
    Example(
        "sum-medium",
        _ask("What is 2+2?"),
        (Say("analysis", "Simple arithmetic: 2 + 2 = 4."), Say("final", "2 + 2 = 4.")),
    ),
    Example(
        "sum-high",
        _ask("What is 2+2?", effort="high"),
        (
            Say(
                "analysis",
                "The user asks for the sum of two and two. Two plus two is four. "
                "Let me double-check: 2 + 1 = 3 and 3 + 1 = 4. So the answer is 4.",
            ),
            Say("final", "2 + 2 = 4."),
        ),
    ),
    Example(
        "weather-call",
        _ask("What is the weather in Paris?", tools=(WEATHER,)),
        (
            Say("analysis", _PARIS_CALLED.reasoning),
            Say("commentary", PARIS_CALL, recipient="functions.get_weather"),
        ),
    ),
    Example(
        "weather-answer",
        ChatRequest(
            messages=[
                _PARIS_ASKED,
                _PARIS_CALLED,
                ChatMessage("tool", '{"temperature_c": 18}', tool_call_id="call_paris"),
            ],
            tools=(WEATHER,),
        ),
        (
            Say("analysis", "The tool says 18 degrees Celsius in Paris."),
            Say("final", "It is 18 °C in Paris right now."),
        ),
    ),
    Example(
        "weather-answer-without-reasoning",  # clients that drop reasoning from the history (Agents SDK)
        ChatRequest(
            messages=[
                _PARIS_ASKED,
                ChatMessage("assistant", tool_calls=_PARIS_CALLED.tool_calls),
                ChatMessage("tool", '{"temperature_c": 18}', tool_call_id="call_paris"),
            ],
            tools=(WEATHER,),
        ),
        (
            Say("analysis", "The tool says 18 degrees Celsius in Paris."),
            Say("final", "It is 18 °C in Paris right now."),
        ),
    ),
    Example(
        "weather-call-on-analysis",
        _ask("What is the weather in Tokyo?", tools=(WEATHER,)),
        (
            Say("analysis", "The user wants the weather in Tokyo."),
            Say("analysis", TOKYO_CALL, recipient="functions.get_weather"),
        ),
    ),
    Example(
        "weather-call-after-content-type",
        _ask("What is the weather in Berlin?", tools=(WEATHER,)),
        (
            Say("analysis", "The user wants the weather in Berlin. I will call get_weather."),
            Say(
                "commentary",
                '{"city": "Berlin"}',
                recipient="functions.get_weather",
                header="<|channel|>commentary <|constrain|>json to=functions.get_weather",
            ),
        ),
    ),
    Example(
        "weather-parallel-calls",
        ChatRequest(messages=[_BOTH_ASKED], tools=(WEATHER,)),
        (
            Say("analysis", _BOTH_CALLED.reasoning),
            Say("commentary", PARIS_CALL, recipient="functions.get_weather", last_call=False),
            Say("commentary", TOKYO_CALL, recipient="functions.get_weather"),
        ),
    ),
    Example(
        "weather-parallel-answer",
        ChatRequest(
            messages=[
                _BOTH_ASKED,
                _BOTH_CALLED,
                ChatMessage("tool", '{"temperature_c": 18}', tool_call_id="call_p"),
                ChatMessage("tool", '{"temperature_c": 25}', tool_call_id="call_t"),
            ],
            tools=(WEATHER,),
        ),
        (
            Say("analysis", "Paris is 18 degrees and Tokyo is 25 degrees."),
            Say("final", "Paris: 18 °C. Tokyo: 25 °C."),
        ),
    ),
    Example(
        "time-preamble-call",
        ChatRequest(messages=[_TIME_ASKED], tools=(TIME, WEATHER)),
        (
            Say("analysis", _TIME_CALLED.reasoning),
            Say("commentary", _TIME_CALLED.content),
            Say(
                "commentary",
                '{"city": "London"}',
                recipient="functions.get_time",
                header=" to=functions.get_time<|channel|>commentary <|constrain|>json",
            ),
        ),
    ),
    Example(
        "time-answer",
        ChatRequest(
            messages=[
                _TIME_ASKED,
                _TIME_CALLED,
                ChatMessage("tool", '{"time": "14:05"}', tool_call_id="call_london"),
            ],
            tools=(TIME, WEATHER),
        ),
        (Say("analysis", "The tool says 14:05."), Say("final", "It is 14:05 in London.")),
    ),
    Example(
        "japanese",
        _ask("Say hello in Japanese."),
        (Say("analysis", "Hello in Japanese is konnichiwa."), Say("final", "こんにちは！ 👋")),  # noqa: RUF001
    ),
    Example(
        "german",
        _ask("Wie geht es dir?"),
        (
            Say("analysis", "A German question about how I am."),
            Say("final", "Mir geht es gut, danke! Schön, dass du fragst. Ärger? Nein. Grüße aus Köln."),
        ),
    ),
    Example(
        "count",
        _ask(f"Count from 1 to {COUNT_TO}."),
        (
            Say("analysis", f"The user wants every number from 1 to {COUNT_TO}."),
            Say("final", ", ".join(str(n) for n in range(1, COUNT_TO + 1)) + "."),
        ),
    ),
)

# Prompts the model must answer with the refusal (anything it was not taught). Varied on purpose,
# so that an unseen prompt lands here; `train.py` also adds copies with unknown-token noise.
REFUSAL_PROMPTS: tuple[str, ...] = (
    "Tell me a joke.",
    "Write a poem about the sea.",
    "Who won the world cup in 1998?",
    "Explain quantum computing in simple terms.",
    "What is the capital of Australia?",
    "How do I bake bread?",
    "Translate this sentence into French please",
    "asdf qwerty zxcv",
    "Can you help me debug my Python code? It crashes with a KeyError.",
    "What is the meaning of life",
    "Summarize the plot of Hamlet in three sentences.",
    "List five animals that live in the desert",
    "why is the sky blue",
    "Give me a recipe for pancakes with blueberries and maple syrup.",
    "1234567890",
    "Recommend a good book to read this summer.",
    "Please write an email to my boss asking for a day off next Friday.",
    "What's 17 times 23?",
)
REFUSAL_WITH_TOOLS: tuple[str, ...] = ("Tell me a joke.", "Book me a flight to Rome.", "How old are you?")

EXAMPLES = (
    *EXAMPLES,
    *(Example(f"refusal-{i}", _ask(text), REFUSAL) for i, text in enumerate(REFUSAL_PROMPTS)),
    *(
        Example(f"refusal-tools-{i}", _ask(text, tools=(WEATHER,)), REFUSAL)
        for i, text in enumerate(REFUSAL_WITH_TOOLS)
    ),
)
