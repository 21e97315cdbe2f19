"""Stop strings on token-id streams: matched on bytes, across token and UTF-8 boundaries."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from service.harmony import tokens
from service.token_stop_strings import TokenStopMatcher


def _ids(text: str) -> list[int]:
    return list(tokens.encoding().encode(text, allowed_special="all"))


def _text(ids: list[int]) -> str:
    return b"".join(tokens.token_bytes(t) for t in ids).decode("utf-8", "replace")


def test_tokens_before_the_stop_are_released_and_the_rest_is_not() -> None:
    matcher = TokenStopMatcher(["STOP"])
    out = [t for token in _ids("one two STOP three") for t in matcher.feed([token])]
    assert matcher.matched and _text(out) == "one two" and matcher.flush() == []
    assert matcher.feed(_ids(" more")) == []


def test_held_tokens_are_released_when_the_prefix_does_not_complete() -> None:
    matcher = TokenStopMatcher(["STOP!"])
    out = matcher.feed(_ids("wait STOP"))  # " STOP" might start "STOP!": held
    assert _text(out) == "wait"
    out += matcher.feed(_ids(" no"))
    assert not matcher.matched
    out += matcher.flush()
    assert _text(out) == "wait STOP no"


def test_no_stop_strings_pass_everything_through() -> None:
    matcher = TokenStopMatcher([])
    assert matcher.feed([1, 2, 3]) == [1, 2, 3] and matcher.flush() == []


def test_a_stop_string_split_inside_a_multibyte_character() -> None:
    # Fake tokens of one byte each: the stop "é" (2 bytes) arrives split over two tokens.
    data = "caf\u00e9 au lait".encode()
    matcher = TokenStopMatcher(["\u00e9"], to_bytes=lambda t: bytes([data[t]]))
    out = [t for i in range(len(data)) for t in matcher.feed([i])]
    assert matcher.matched and bytes(data[t] for t in out) == b"caf"


@given(st.text(alphabet="ab STOP\u00e9", max_size=40), st.sampled_from(["STOP", "ab", "\u00e9b"]))
def test_released_text_never_contains_the_stop_and_is_a_prefix(text: str, stop: str) -> None:
    ids = _ids(text)
    matcher = TokenStopMatcher([stop])
    out = [t for token in ids for t in matcher.feed([token])] + matcher.flush()
    released = b"".join(tokens.token_bytes(t) for t in out)
    full = b"".join(tokens.token_bytes(t) for t in ids)
    assert full.startswith(released)
    assert stop.encode() not in released
    if stop.encode() not in full:
        assert released == full and not matcher.matched
