"""The per-caller share of the concurrency slots (`caller_max_share`): one caller (API key) may hold
at most its share, over it it waits in the queue, and the other callers keep running. First on
`ServiceState` alone, then through the real server."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import grpc
import pytest
from gptoss.v1 import inference_pb2 as pb
from gptoss.v1 import inference_pb2_grpc

from service.errors import ServiceError
from service.lifecycle import Phase, ServiceState
from tests.conftest import wait_until
from tests.reliability.helpers import error_reason
from tests.support.scripted_engine import USER, streaming_text
from tests.support.server_thread import ServerThread

ServerFactory = Callable[..., ServerThread]


async def test_one_caller_holds_at_most_its_share() -> None:
    """Issue 17 item 6: one caller used to be able to take every slot."""
    state = ServiceState(4, queue_size=0, per_caller_limit=2)
    state.set_phase(Phase.SERVING)
    greedy = [await state.admit("greedy"), await state.admit("greedy")]
    error = await _rejected_for(state, "greedy")
    assert "share" in error.message
    others = [await state.admit("polite"), await state.admit("other")]  # room for everyone else
    assert state.active_streams == 4 and state.streams_of("greedy") == 2
    for admission in (*greedy, *others):
        admission.release()
    assert state.active_streams == 0 and state.idle.is_set() and state.streams_of("greedy") == 0


async def _rejected_for(state: ServiceState, caller: str) -> ServiceError:
    with pytest.raises(ServiceError) as raised:
        await state.admit(caller)
    assert raised.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED and raised.value.reason == "OVERLOADED"
    return raised.value


async def test_over_its_share_a_caller_waits_in_the_queue_without_blocking_others() -> None:
    state = ServiceState(3, queue_size=4, queue_timeout=5.0, per_caller_limit=1)
    state.set_phase(Phase.SERVING)
    first = await state.admit("a")
    second_of_a = asyncio.create_task(state.admit("a"))  # over its share: waits
    await asyncio.sleep(0.01)
    assert state.queued == 1 and not second_of_a.done()
    b = await asyncio.wait_for(state.admit("b"), 1)  # another caller is not stuck behind it
    first.release()  # a's own slot frees: its waiter runs
    admission = await asyncio.wait_for(second_of_a, 1)
    assert state.streams_of("a") == 1 and state.active_streams == 2
    for held in (admission, b):
        held.release()
    assert state.active_streams == 0 and state.queued == 0


async def test_a_caller_share_through_the_server_with_two_keys(scripted_server: ServerFactory) -> None:
    """Limit 4, share 0.5: one key gets 2 streams (the third is refused), the other key still runs."""
    server = scripted_server(
        streaming_text(200),
        step_delay=0.02,
        max_concurrent_requests=4,
        caller_max_share=0.5,
        api_keys=["greedy", "polite"],
    )
    assert server.service is not None
    state = server.service.state

    async def generate(stub: inference_pb2_grpc.InferenceServiceStub, key: str, tokens: int) -> str:
        call = stub.Generate(
            pb.GenerateRequest(messages=USER, max_tokens=tokens),
            metadata=(("authorization", f"Bearer {key}"),),
            timeout=30,
        )
        try:
            async for _ in call:
                pass
            return "OK"
        except grpc.aio.AioRpcError as error:
            return f"{error.code().name}/{error_reason(error)}"

    async with grpc.aio.insecure_channel(server.target) as channel:
        stub = inference_pb2_grpc.InferenceServiceStub(channel)
        long_ones = [asyncio.create_task(generate(stub, "greedy", 60)) for _ in range(2)]
        await asyncio.to_thread(wait_until, lambda: state.active_streams == 2)
        assert await generate(stub, "greedy", 2) == "RESOURCE_EXHAUSTED/OVERLOADED"
        assert await generate(stub, "polite", 2) == "OK"
        assert await asyncio.gather(*long_ones) == ["OK", "OK"]
    assert wait_until(lambda: state.active_streams == 0)
