"""Stop strings matched across streamed deltas, with partial matches held back."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from service.stop_strings import StopStringMatcher


def test_match_inside_one_delta() -> None:
    matcher = StopStringMatcher(["END"])
    assert matcher.feed("hello END world") == "hello "
    assert matcher.matched and matcher.feed("more") == "" and matcher.flush() == ""


def test_match_split_across_deltas_holds_back_prefix() -> None:
    matcher = StopStringMatcher(["</answer>"])
    assert matcher.feed("42</an") == "42"
    assert matcher.feed("swer> trailing") == ""
    assert matcher.matched


def test_partial_prefix_released_when_it_is_not_a_stop() -> None:
    matcher = StopStringMatcher(["STOP"])
    assert matcher.feed("ST") == ""
    assert matcher.feed("ART") == "START"
    assert matcher.feed("ST") == ""
    assert matcher.flush() == "ST"


def test_no_stops_is_passthrough() -> None:
    assert StopStringMatcher([]).feed("anything") == "anything"


@given(
    st.text(max_size=60),
    st.lists(st.integers(min_value=1, max_value=7), max_size=20),
    st.sampled_from(["ab", "x", "qq!"]),
)
def test_streamed_equals_whole_text(text: str, cuts: list[int], stop: str) -> None:
    matcher = StopStringMatcher([stop])
    out, pos = "", 0
    for size in [*cuts, len(text)]:
        out += matcher.feed(text[pos : pos + size])
        pos += size
    out += matcher.flush()
    index = text.find(stop)
    assert out == (text[:index] if index >= 0 else text)
    assert matcher.matched == (index >= 0)
