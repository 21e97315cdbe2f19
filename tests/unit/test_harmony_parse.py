"""The incremental Harmony parser on scripted token sequences, well-formed and not."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.harmony import (
    ContentText,
    Event,
    HarmonyStreamParser,
    ReasoningText,
    ToolCallArguments,
    ToolCallEnd,
    ToolCallStart,
)
from service.harmony import tokens as tk
from service.harmony.parse import coalesce, split_header


def toks(harmony_text: str) -> list[int]:
    return list(tk.encoding().encode(harmony_text, allowed_special="all"))


def byte_tokens(data: bytes) -> list[int]:
    """One token per byte (byte-level BPE ranks follow GPT-2's byte order)."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    order = printable + [b for b in range(256) if b not in printable]
    rank = {byte: i for i, byte in enumerate(order)}
    return [rank[b] for b in data]


def run(tokens: list[int], chunk: int = 1) -> tuple[list[Event], HarmonyStreamParser]:
    ids = (f"call_{i}" for i in itertools.count())
    parser = HarmonyStreamParser(id_factory=lambda: next(ids))
    events: list[Event] = []
    for i in range(0, len(tokens), chunk):
        events += parser.feed(tokens[i : i + chunk])
    events += parser.finish()
    return coalesce(events), parser


def test_byte_tokens_helper_is_exact() -> None:
    assert b"".join(tk.token_bytes(t) for t in byte_tokens("日x".encode())) == "日x".encode()


@pytest.mark.parametrize("chunk", [1, 3, 1000])
def test_analysis_then_final(chunk: int) -> None:
    events, parser = run(
        toks(
            "<|channel|>analysis<|message|>Let me think.<|end|><|start|>assistant<|channel|>final<|message|>Hello!<|return|>"
        ),
        chunk,
    )
    assert events == [ReasoningText("Let me think."), ContentText("Hello!")]
    assert parser.problems == []
    assert parser.last_terminator == tk.RETURN
    assert parser.reasoning_tokens == len(toks("Let me think.<|end|>"))


def test_tool_call_on_commentary() -> None:
    events, parser = run(
        toks(
            '<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{"city": "Paris"}<|call|>'
        )
    )
    assert events == [
        ToolCallStart(0, "call_0", "get_weather"),
        ToolCallArguments(0, '{"city": "Paris"}'),
        ToolCallEnd(0, "call_0", "get_weather", '{"city": "Paris"}'),
    ]
    assert parser.tool_calls_completed == 1 and parser.last_terminator == tk.CALL


def test_tool_call_on_analysis_with_recipient_before_channel() -> None:
    events, _ = run(
        toks(
            "<|channel|>analysis<|message|>Need data.<|end|>"
            '<|start|>assistant to=functions.lookup<|channel|>analysis <|constrain|>json<|message|>{"q":1}<|call|>'
        )
    )
    assert events == [
        ReasoningText("Need data."),
        ToolCallStart(0, "call_0", "lookup"),
        ToolCallArguments(0, '{"q":1}'),
        ToolCallEnd(0, "call_0", "lookup", '{"q":1}'),
    ]


_GET_WEATHER_CALL = [
    ToolCallStart(0, "call_0", "get_weather"),
    ToolCallArguments(0, '{"city": "Paris"}'),
    ToolCallEnd(0, "call_0", "get_weather", '{"city": "Paris"}'),
]


@pytest.mark.parametrize(
    "header",
    [
        "<|channel|>commentary to=functions.get_weather <|constrain|>json",  # openai_harmony's own order
        " to=functions.get_weather<|channel|>commentary <|constrain|>json",  # recipient in the role part
        " to=functions.get_weather<|channel|>commentary json",  # ... and a bare content type
        "<|channel|>commentary <|constrain|>json to=functions.get_weather",  # after the content type
        "<|channel|>commentary<|constrain|>json to=functions.get_weather",
        "<|channel|>commentary json to=functions.get_weather",
        "<|channel|>to=functions.get_weather commentary <|constrain|>json",
        " to=functions.get_weather <|constrain|>json",  # no channel at all
    ],
)
@pytest.mark.parametrize("chunk", [1, 1000])
def test_recipient_in_any_header_position_is_a_tool_call(header: str, chunk: int) -> None:
    events, parser = run(toks(header + '<|message|>{"city": "Paris"}<|call|>'), chunk)
    assert events == _GET_WEATHER_CALL
    assert parser.problems == [] and parser.tool_calls_completed == 1


@pytest.mark.parametrize(
    ("header", "channel"),
    [
        ("<|channel|>analysis <|constrain|>json to=functions.get_weather", "analysis"),
        (" to=functions.get_weather<|channel|>analysis", "analysis"),
        ("<|channel|>commentary to=functions.get_weather <|constrain|>json", "commentary"),
    ],
)
def test_split_header_reads_channel_and_recipient(header: str, channel: str) -> None:
    assert split_header("assistant" + header) == ("assistant", channel, "functions.get_weather")


def test_recipient_after_content_type_on_a_later_message() -> None:
    events, parser = run(
        toks(
            "<|channel|>analysis<|message|>Checking.<|end|>"
            '<|start|>assistant<|channel|>commentary <|constrain|>json to=functions.get_weather<|message|>{"city": "Paris"}<|call|>'
        )
    )
    assert events == [ReasoningText("Checking."), *_GET_WEATHER_CALL]
    assert parser.problems == []


def test_non_function_recipient_after_content_type_stays_out_of_content() -> None:
    events, parser = run(
        toks("<|channel|>commentary <|constrain|>json to=browser.search<|message|>x<|call|>")
    )
    assert events == [ReasoningText("x")]
    assert parser.problems == ["recipient 'browser.search' is not a function: kept as reasoning"]


def test_two_tool_calls_in_one_turn() -> None:
    events, parser = run(
        toks(
            '<|channel|>commentary to=functions.a <|constrain|>json<|message|>{"x":1}<|call|>'
            '<|start|>assistant<|channel|>commentary to=functions.b <|constrain|>json<|message|>{"y":2}<|call|>'
        )
    )
    ends = [e for e in events if isinstance(e, ToolCallEnd)]
    assert ends == [ToolCallEnd(0, "call_0", "a", '{"x":1}'), ToolCallEnd(1, "call_1", "b", '{"y":2}')]
    assert parser.tool_calls_completed == 2


def test_trailing_return_after_end() -> None:
    events, parser = run(toks("<|channel|>final<|message|>Done.<|end|><|return|>"))
    assert events == [ContentText("Done.")]
    assert parser.problems == [] and parser.last_terminator == tk.RETURN


def test_cut_mid_message() -> None:
    tokens = toks("<|channel|>final<|message|>The answer is forty two")
    events, parser = run(tokens[:-2])
    assert events == [ContentText(tk.encoding().decode(tokens[tokens.index(tk.MESSAGE) + 1 : -2]))]
    assert parser.problems == []


def test_cut_mid_tool_call_arguments_has_no_done_marker() -> None:
    tokens = toks('<|channel|>commentary to=functions.f <|constrain|>json<|message|>{"city": "Par')
    events, parser = run(tokens)
    assert events[0] == ToolCallStart(0, "call_0", "f")
    assert not any(isinstance(e, ToolCallEnd) for e in events)
    assert "".join(e.text for e in events if isinstance(e, ToolCallArguments)) == '{"city": "Par'
    assert parser.tool_calls_completed == 0


def test_missing_start_is_recovered() -> None:
    events, parser = run(
        toks("<|channel|>analysis<|message|>Hmm.<|end|>assistant<|channel|>final<|message|>Hi<|return|>")
    )
    assert events == [ReasoningText("Hmm."), ContentText("Hi")]
    assert any("missing <|start|>" in p for p in parser.problems)


def test_unknown_channel_never_reaches_content() -> None:
    events, parser = run(toks("<|channel|>secret<|message|>hidden<|end|>"))
    assert events == [ReasoningText("hidden")]
    assert any("unknown channel" in p for p in parser.problems)


def test_commentary_without_recipient_is_content() -> None:
    events, _ = run(toks("<|channel|>commentary<|message|>Checking the weather now.<|end|>"))
    assert events == [ContentText("Checking the weather now.")]


def test_invalid_utf8_split_across_tokens() -> None:
    head = toks("<|channel|>final<|message|>")
    # "日" split into three one-byte tokens, then a lone continuation byte (invalid), then "!".
    events, parser = run(head + byte_tokens("日".encode()) + byte_tokens(b"\x97") + toks("!<|return|>"))
    assert events == [ContentText("日\ufffd!")]
    assert parser.problems == []


def test_utf8_char_is_never_emitted_half() -> None:
    head = toks("<|channel|>final<|message|>")
    parser = HarmonyStreamParser()
    parser.feed(head)
    partial = byte_tokens("é".encode())
    assert parser.feed(partial[:1]) == []
    assert parser.feed(partial[1:]) == [ContentText("é")]


def test_stray_special_tokens_are_dropped() -> None:
    events, parser = run(toks("<|channel|>final<|message|>a<|message|>b<|channel|>c<|return|>"))
    assert events == [ContentText("abc")]
    assert len(parser.problems) == 2


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.integers(min_value=0, max_value=201087),
            st.sampled_from([tk.START, tk.END, tk.MESSAGE, tk.CHANNEL, tk.CONSTRAIN, tk.RETURN, tk.CALL]),
        ),
        max_size=200,
    ),
    st.integers(min_value=1, max_value=16),
)
def test_arbitrary_tokens_never_raise(tokens: list[int], chunk: int) -> None:
    events, parser = run(tokens, chunk)
    completed = [e for e in events if isinstance(e, ToolCallEnd)]
    assert len(completed) == parser.tool_calls_completed
    for event in events:
        assert isinstance(
            event, ReasoningText | ContentText | ToolCallStart | ToolCallArguments | ToolCallEnd
        )
