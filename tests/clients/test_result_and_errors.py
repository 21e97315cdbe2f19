"""The one fold (gptoss.result) and the one ErrorInfo decoder (gptoss.errors), as pure functions."""

from __future__ import annotations

import grpc
import pytest
from gptoss import (
    CompletionBuilder,
    ContentDelta,
    Done,
    FinishReason,
    NotFoundError,
    ReasoningDelta,
    ToolCall,
    ToolCallDelta,
    ToolCallDone,
    decode_status_details,
    unsent_arguments,
)
from gptoss.errors import error_class

from tests.clients.fake_service import Fail


def test_unsent_arguments_is_the_tail_the_deltas_did_not_carry() -> None:
    done = ToolCallDone(index=0, id="c", name="f", arguments='{"a": 1}')
    assert unsent_arguments("", done) == '{"a": 1}'  # a service that sends arguments only at the end
    assert unsent_arguments('{"a"', done) == ": 1}"
    assert unsent_arguments('{"a": 1}', done) == ""
    assert unsent_arguments('{"b"', done) == ""  # cannot be patched by appending: what was sent stands


def test_the_builder_folds_incrementally() -> None:
    builder = CompletionBuilder()
    builder.add(ReasoningDelta("think"))
    builder.add(ContentDelta("Hel"))
    assert not builder.done and builder.result().content == "Hel"
    assert builder.result().finish_reason is FinishReason.UNSPECIFIED  # no Done yet
    builder.add(ToolCallDelta(index=0, id="c1", name="f", arguments_delta='{"x"'))
    done_call = ToolCallDone(index=0, id="", name="", arguments='{"x": 2}')
    assert builder.arguments_sent(0) == '{"x"' and builder.unsent_arguments(done_call) == ": 2}"
    builder.add(done_call)
    builder.add(ContentDelta("lo"))
    builder.add(Done(finish_reason=FinishReason.TOOL_CALLS, request_id="r"))
    result = builder.result()
    assert builder.done and (result.reasoning, result.content, result.request_id) == ("think", "Hello", "r")
    # ToolCallDone without id/name (a terse service) keeps what the first delta said.
    assert result.tool_calls == (ToolCall("c1", "f", '{"x": 2}'),)
    assert builder.arguments_sent(7) == ""


def test_decode_status_details() -> None:
    raw = Fail(grpc.StatusCode.NOT_FOUND, "no such model", "MODEL_NOT_FOUND", {"param": "model"}).details()
    assert raw is not None
    details = decode_status_details(raw)
    assert (details.code, details.message, details.reason, details.domain, details.metadata) == (
        grpc.StatusCode.NOT_FOUND,
        "no such model",
        "MODEL_NOT_FOUND",
        "gptoss.v1",
        {"param": "model"},
    )
    with pytest.raises(ValueError, match=r"google\.rpc\.Status"):
        decode_status_details(b"\xff\x00garbage")


def test_a_reason_refines_its_code_but_never_crosses_it() -> None:
    assert error_class(grpc.StatusCode.NOT_FOUND, "MODEL_NOT_FOUND") is NotFoundError
    assert error_class(grpc.StatusCode.UNAVAILABLE, "INVALID_API_KEY").__name__ == "UnavailableError"
