"""n > 1 on the real server with a scripted engine: one engine request per choice, events marked
with their choice, one Done each, admission of n slots, no leaked engine request."""

from __future__ import annotations

import grpc
import pytest
from gptoss.v1 import inference_pb2 as pb

from tests.conftest import wait_until
from tests.integration.test_generate_live import error_info
from tests.integration.test_service_scripted import USER, ServerFactory, streaming_text, stub_for
from tests.support.scripted_engine import ScriptedEngine


def test_n_choices_each_end_with_their_own_done(scripted_server: ServerFactory) -> None:
    server = scripted_server(streaming_text(5), step_delay=0.001)
    engine = server.engine
    assert isinstance(engine, ScriptedEngine)
    before = engine.requests  # the service's own start-up probe
    channel, stub = stub_for(server)
    with channel:
        responses = list(
            stub.Generate(pb.GenerateRequest(messages=USER, n=3, max_tokens=8, seed=5), timeout=10)
        )
    dones = [r for r in responses if r.HasField("done")]
    assert sorted(r.choice_index for r in dones) == [0, 1, 2]
    assert responses[-1].HasField("done")
    for choice in range(3):
        events = [r for r in responses if r.choice_index == choice]
        assert events[-1].HasField("done") and sum(r.HasField("done") for r in events) == 1
        assert "".join(r.content.text for r in events if r.HasField("content")) == " a" * 5
    assert engine.requests - before == 3 and len({tuple(p) for p in engine.prompts[before:]}) == 1
    assert engine.num_unfinished_requests() == 0


def test_n_counts_against_the_concurrency_limit(scripted_server: ServerFactory) -> None:
    server = scripted_server(streaming_text(5), max_concurrent_requests=2)
    channel, stub = stub_for(server)
    with channel:
        with pytest.raises(grpc.RpcError) as caught:
            list(stub.Generate(pb.GenerateRequest(messages=USER, n=3), timeout=10))
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error_info(caught.value).metadata["param"] == "n"
        ok = list(stub.Generate(pb.GenerateRequest(messages=USER, n=2, max_tokens=3), timeout=10))
        assert sum(r.HasField("done") for r in ok) == 2
    assert server.service is not None


def test_cancelling_an_n_stream_aborts_every_choice(scripted_server: ServerFactory) -> None:
    server = scripted_server(streaming_text(2000), step_delay=0.01)
    engine = server.engine
    assert isinstance(engine, ScriptedEngine)
    channel, stub = stub_for(server)
    with channel:
        call = stub.Generate(pb.GenerateRequest(messages=USER, n=3), timeout=10)
        next(call)
        assert wait_until(lambda: engine.num_unfinished_requests() == 3)
        call.cancel()
    engine = server.engine
    assert isinstance(engine, ScriptedEngine)
    assert wait_until(lambda: engine.num_unfinished_requests() == 0)  # all three choices stopped
    assert wait_until(
        lambda: server.service is not None and server.service.state.active_streams == 0
    )  # and their three slots freed


@pytest.mark.parametrize("n", [-1, 129])
def test_n_out_of_range_names_n(scripted_server: ServerFactory, n: int) -> None:
    server = scripted_server(streaming_text(1))
    channel, stub = stub_for(server)
    with channel, pytest.raises(grpc.RpcError) as caught:
        list(stub.Generate(pb.GenerateRequest(messages=USER, n=n), timeout=10))
    assert error_info(caught.value).metadata["param"] == "n"
