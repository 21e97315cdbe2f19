"""The real server with the real vLLM CPU engine (the trained harmony-tiny model), through generated stubs.

Assertions here are on structure; models/harmony-tiny/README.md's contract is pinned in
test_harmony_live_model.py.
"""

from __future__ import annotations

import concurrent.futures

import grpc
import pytest
from google.protobuf import struct_pb2
from google.rpc import error_details_pb2, status_pb2
from gptoss.contract import READINESS_SERVICE, STATUS_DETAILS_KEY
from gptoss.v1 import inference_pb2 as pb
from gptoss.v1 import inference_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests.conftest import wait_until
from tests.support.server_thread import ServerThread

USER_HI = [pb.Message(role=pb.ROLE_USER, content="Hello, who are you?")]


def generate(stub: inference_pb2_grpc.InferenceServiceStub, **fields: object) -> list[pb.GenerateResponse]:
    request = pb.GenerateRequest(**{"messages": USER_HI, **fields})  # type: ignore[arg-type]
    return list(stub.Generate(request, timeout=120))


def assert_well_formed(responses: list[pb.GenerateResponse]) -> pb.Done:
    """Exactly one Done, last; tool-call deltas reference started calls."""
    kinds = [r.WhichOneof("event") for r in responses]
    assert kinds.count("done") == 1 and kinds[-1] == "done", kinds
    done = responses[-1].done
    assert done.finish_reason != pb.FINISH_REASON_UNSPECIFIED
    started: set[int] = set()
    for response in responses:
        if response.HasField("tool_call"):
            if response.tool_call.id:
                started.add(response.tool_call.index)
            assert response.tool_call.index in started
    return done


def error_info(error: grpc.RpcError) -> error_details_pb2.ErrorInfo:
    details = dict(error.trailing_metadata() or ())[STATUS_DETAILS_KEY]  # type: ignore[attr-defined]
    status = status_pb2.Status.FromString(details)
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    return info


@pytest.mark.engine
def test_generate_streams_events_with_usage_and_finish(stub: inference_pb2_grpc.InferenceServiceStub) -> None:
    responses = generate(stub, max_tokens=32, temperature=1.0, seed=7, request_id="my-req-1")
    done = assert_well_formed(responses)
    prompt_tokens = stub.CountTokens(pb.CountTokensRequest(messages=USER_HI)).prompt_tokens
    assert done.usage.prompt_tokens == prompt_tokens > 0
    assert 1 <= done.usage.completion_tokens <= 32
    assert done.finish_reason in (pb.FINISH_REASON_LENGTH, pb.FINISH_REASON_STOP, pb.FINISH_REASON_TOOL_CALLS)
    if done.finish_reason == pb.FINISH_REASON_LENGTH:
        assert done.usage.completion_tokens == 32
    assert done.request_id == "my-req-1"
    assert done.timings.total.ToTimedelta() >= done.timings.time_to_first_token.ToTimedelta()
    assert done.timings.time_to_first_token.ToNanoseconds() > 0


@pytest.mark.engine
def test_same_seed_same_output(stub: inference_pb2_grpc.InferenceServiceStub) -> None:
    first = generate(stub, max_tokens=16, temperature=1.0, seed=123, ignore_eos=True)
    second = generate(stub, max_tokens=16, temperature=1.0, seed=123, ignore_eos=True)
    strip = [r for r in first if not r.HasField("done")]
    assert strip == [r for r in second if not r.HasField("done")]


@pytest.mark.engine
def test_raw_token_mode(stub: inference_pb2_grpc.InferenceServiceStub) -> None:
    request = pb.GenerateRequest(
        prompt_token_ids=[200006, 1428, 200008, 12194], max_tokens=20, ignore_eos=True
    )
    responses = list(stub.Generate(request, timeout=60))
    done = assert_well_formed(responses)
    ids = [t for r in responses if r.HasField("token_ids") for t in r.token_ids.token_ids]
    assert len(ids) == done.usage.completion_tokens == 20
    assert all(0 <= t < 201088 for t in ids)
    assert {r.WhichOneof("event") for r in responses} == {"token_ids", "done"}
    assert done.finish_reason == pb.FINISH_REASON_LENGTH and done.usage.prompt_tokens == 4


@pytest.mark.engine
def test_health_liveness_and_readiness(channel: grpc.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", READINESS_SERVICE):
        reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.engine
def test_reflection_lists_the_service(channel: grpc.Channel) -> None:
    reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
    replies = reflection.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    )
    names = {s.name for reply in replies for s in reply.list_services_response.service}
    assert {READINESS_SERVICE, "grpc.health.v1.Health"} <= names


@pytest.mark.engine
def test_model_info(stub: inference_pb2_grpc.InferenceServiceStub) -> None:
    info = stub.GetModelInfo(pb.GetModelInfoRequest(), timeout=5)
    assert info.model_id == "gpt-oss-tiny" and info.max_context_length == 4096 and info.profile == "cpu-tiny"
    assert info.engine_version.startswith("0.")


@pytest.mark.engine
def test_cancel_mid_stream_aborts_the_engine_request(live_server: ServerThread) -> None:
    with grpc.insecure_channel(live_server.target) as chan:
        stub = inference_pb2_grpc.InferenceServiceStub(chan)
        call = stub.Generate(
            pb.GenerateRequest(prompt_token_ids=[200006, 1428], max_tokens=3000, ignore_eos=True), timeout=120
        )
        next(call)
        assert live_server.engine.num_unfinished_requests() >= 1
        call.cancel()
    assert wait_until(lambda: live_server.engine.num_unfinished_requests() == 0, timeout=15)
    assert live_server.service is not None
    assert wait_until(lambda: live_server.service.state.active_streams == 0, timeout=5)  # type: ignore[union-attr]


@pytest.mark.engine
def test_deadline_aborts_the_engine_request(
    live_server: ServerThread, stub: inference_pb2_grpc.InferenceServiceStub
) -> None:
    request = pb.GenerateRequest(prompt_token_ids=[200006, 1428], max_tokens=3500, ignore_eos=True)
    with pytest.raises(grpc.RpcError) as info:
        list(stub.Generate(request, timeout=0.5))
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED  # type: ignore[attr-defined]
    assert wait_until(lambda: live_server.engine.num_unfinished_requests() == 0, timeout=15)


@pytest.mark.engine
def test_fifty_random_requests_end_well_formed(stub: inference_pb2_grpc.InferenceServiceStub) -> None:
    def one(i: int) -> pb.Done:
        responses = generate(stub, max_tokens=48, temperature=1.0, seed=1000 + i)
        return assert_well_formed(responses)

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        dones = list(pool.map(one, range(50)))
    assert len(dones) == 50
    for done in dones:
        assert done.finish_reason in (
            pb.FINISH_REASON_STOP,
            pb.FINISH_REASON_LENGTH,
            pb.FINISH_REASON_TOOL_CALLS,
        )
        assert done.usage.completion_tokens >= 1


def _tool(parameters: dict[str, object]) -> pb.Tool:
    struct = struct_pb2.Struct()
    struct.update(parameters)
    return pb.Tool(name="f", parameters=struct)


BAD_REQUESTS = {
    "empty messages": (pb.GenerateRequest(), "messages", "INVALID_REQUEST"),
    "unknown role": (
        pb.GenerateRequest(messages=[pb.Message(role=42, content="x")]),
        "messages[0].role",
        "INVALID_REQUEST",
    ),  # type: ignore[arg-type]
    "unspecified role": (
        pb.GenerateRequest(messages=[pb.Message(content="x")]),
        "messages[0].role",
        "INVALID_REQUEST",
    ),
    "tool schema not an object": (
        pb.GenerateRequest(messages=USER_HI, tools=[_tool({"type": "string"})]),
        "tools[0].parameters",
        "INVALID_REQUEST",
    ),
    "tool properties not an object": (
        pb.GenerateRequest(messages=USER_HI, tools=[_tool({"type": "object", "properties": [1, 2]})]),
        "tools[0].parameters",
        "INVALID_REQUEST",
    ),
    "prompt too long": (
        pb.GenerateRequest(messages=[pb.Message(role=pb.ROLE_USER, content="hello " * 5000)]),
        "messages",
        "CONTEXT_LENGTH_EXCEEDED",
    ),
    "prompt + max_tokens too long": (
        pb.GenerateRequest(
            messages=[pb.Message(role=pb.ROLE_USER, content="hello " * 3000)], max_tokens=2000
        ),
        "max_tokens",
        "CONTEXT_LENGTH_EXCEEDED",
    ),
    "max_tokens zero": (pb.GenerateRequest(messages=USER_HI, max_tokens=0), "max_tokens", "INVALID_REQUEST"),
    "max_tokens negative": (
        pb.GenerateRequest(messages=USER_HI, max_tokens=-5),
        "max_tokens",
        "INVALID_REQUEST",
    ),
    "max_tokens huge": (
        pb.GenerateRequest(messages=USER_HI, max_tokens=10**9),
        "max_tokens",
        "INVALID_REQUEST",
    ),
    "both inputs": (
        pb.GenerateRequest(messages=USER_HI, prompt_token_ids=[1, 2]),
        "prompt_token_ids",
        "INVALID_REQUEST",
    ),
    "token id out of vocab": (
        pb.GenerateRequest(prompt_token_ids=[1, 999999]),
        "prompt_token_ids",
        "INVALID_REQUEST",
    ),
    "temperature nan": (
        pb.GenerateRequest(messages=USER_HI, temperature=float("nan")),
        "temperature",
        "INVALID_REQUEST",
    ),
    "top_p zero": (pb.GenerateRequest(messages=USER_HI, top_p=0.0), "top_p", "INVALID_REQUEST"),
    "tool result for unknown call": (
        pb.GenerateRequest(
            messages=[*USER_HI, pb.Message(role=pb.ROLE_TOOL, content="{}", tool_call_id="zzz")]
        ),
        "messages[1].tool_call_id",
        "INVALID_REQUEST",
    ),
}


@pytest.mark.engine
@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
def test_invalid_argument(
    case: str, live_server: ServerThread, stub: inference_pb2_grpc.InferenceServiceStub
) -> None:
    request, param, reason = BAD_REQUESTS[case]
    before = live_server.engine.num_unfinished_requests()
    with pytest.raises(grpc.RpcError) as raised:
        list(stub.Generate(request, timeout=30))
    error = raised.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()  # type: ignore[attr-defined]
    assert param.split("[")[0] in error.details()  # type: ignore[attr-defined]
    info = error_info(error)
    assert (info.reason, info.metadata["param"], info.domain) == (reason, param, "gptoss.v1")
    assert live_server.engine.num_unfinished_requests() == before


@pytest.mark.engine
def test_unknown_model_is_not_found(stub: inference_pb2_grpc.InferenceServiceStub) -> None:
    with pytest.raises(grpc.RpcError) as raised:
        generate(stub, model="gpt-5")
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND  # type: ignore[attr-defined]
    assert error_info(raised.value).reason == "MODEL_NOT_FOUND"
    assert_well_formed(generate(stub, model="gpt-oss-tiny", max_tokens=2))
