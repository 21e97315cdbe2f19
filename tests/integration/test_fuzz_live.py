"""Hypothesis-generated GenerateRequests against the real server: never INTERNAL, never a hang."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import struct_pb2
from gptoss.v1 import inference_pb2 as pb
from gptoss.v1 import inference_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import wait_until
from tests.support.server_thread import ServerThread

ALLOWED = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.NOT_FOUND}
texts = st.text(max_size=40)
names = st.one_of(st.from_regex(r"[a-z_]{1,10}", fullmatch=True), texts)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | texts,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["type", "properties", "x"]), inner, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def tools(draw: st.DrawFn) -> pb.Tool:
    parameters = struct_pb2.Struct()
    parameters.update(
        draw(
            st.dictionaries(st.sampled_from(["type", "properties", "required", "x"]), json_values, max_size=4)
        )
    )
    return pb.Tool(name=draw(names), description=draw(texts), parameters=parameters)


@st.composite
def messages(draw: st.DrawFn) -> pb.Message:
    calls = draw(st.lists(st.builds(pb.ToolCall, id=texts, name=names, arguments=texts), max_size=2))
    return pb.Message(
        role=draw(st.integers(-1, 7)),
        content=draw(texts),
        channel=draw(st.sampled_from(["", "final", "analysis", "commentary", "bogus"])),
        reasoning=draw(texts),
        tool_calls=calls,
        tool_call_id=draw(texts),
        name=draw(st.one_of(st.just(""), names)),
    )


floats = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True, width=32))


@st.composite
def requests(draw: st.DrawFn) -> pb.GenerateRequest:
    request = pb.GenerateRequest(
        messages=draw(st.lists(messages(), max_size=4)),
        tools=draw(st.lists(tools(), max_size=3)),
        reasoning_effort=draw(st.integers(-1, 5)),
        stop=draw(st.lists(texts, max_size=3)),
        model=draw(st.sampled_from(["", "gpt-oss-tiny", "other"])),
        max_tokens=draw(st.one_of(st.integers(-(2**31), 8), st.integers(10**5, 2**31 - 1))),
        tool_choice=pb.ToolChoice(mode=draw(st.integers(-1, 6)), function_name=draw(names)),
        prompt_token_ids=draw(st.one_of(st.just([]), st.lists(st.integers(-5, 300000), max_size=5))),
    )
    for field in ("temperature", "top_p", "min_p", "presence_penalty", "frequency_penalty"):
        value = draw(floats)
        if value is not None:
            setattr(request, field, value)
    if draw(st.booleans()):
        request.top_k = draw(st.integers(-(2**31), 2**31 - 1))
    if draw(st.booleans()):
        request.seed = draw(st.integers(-(2**63), 2**63 - 1))
    return request


@pytest.mark.engine
@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(requests())
def test_fuzzed_requests_get_ok_or_a_client_error(
    live_server: ServerThread, stub: inference_pb2_grpc.InferenceServiceStub, request: pb.GenerateRequest
) -> None:
    try:
        responses = list(stub.Generate(request, timeout=60))
    except grpc.RpcError as error:
        assert error.code() in ALLOWED, (error.code(), error.details())  # type: ignore[attr-defined]
        assert error.details()  # type: ignore[attr-defined]
    else:
        assert responses[-1].HasField("done")


@pytest.mark.engine
def test_no_engine_request_leaks_after_fuzzing(live_server: ServerThread) -> None:
    assert wait_until(lambda: live_server.engine.num_unfinished_requests() == 0, timeout=10)
    assert live_server.service is not None and live_server.service.state.active_streams == 0
