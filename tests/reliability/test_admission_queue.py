"""The optional bounded admission queue (`admission_queue_size`, `admission_queue_timeout_seconds`):
requests beyond the concurrency limit wait for a slot up to the timeout, first come first served;
a full queue or an expired wait is RESOURCE_EXHAUSTED; cancelled waiters leave the queue; draining
fails the waiters with UNAVAILABLE. First on `ServiceState` alone, then through the real server.
The per-caller share of the slots: test_caller_share.py."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import grpc
import pytest
from gptoss.v1 import inference_pb2 as pb
from gptoss.v1 import inference_pb2_grpc

from service.errors import ServiceError
from service.lifecycle import Admission, Phase, ServiceState
from tests.conftest import wait_until
from tests.reliability.helpers import Tally, error_reason
from tests.support.scripted_engine import USER, streaming_text
from tests.support.server_thread import ServerThread

ServerFactory = Callable[..., ServerThread]


def _state(limit: int, queue: int, timeout: float = 5.0) -> ServiceState:
    state = ServiceState(limit, queue_size=queue, queue_timeout=timeout)
    state.set_phase(Phase.SERVING)
    return state


async def _rejected(state: ServiceState) -> ServiceError:
    with pytest.raises(ServiceError) as raised:
        await state.admit()
    assert raised.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED and raised.value.reason == "OVERLOADED"
    return raised.value


async def test_without_a_queue_the_excess_is_refused_at_once() -> None:
    state = _state(limit=2, queue=0)
    held = [await state.admit(), await state.admit()]
    started = time.monotonic()
    await _rejected(state)
    assert time.monotonic() - started < 0.05 and state.active_streams == 2
    held[0].release()
    held[0].release()  # releasing twice is harmless
    assert state.active_streams == 1
    (await state.admit()).release()
    held[1].release()
    assert state.active_streams == 0 and state.idle.is_set()


async def test_waiters_get_freed_slots_in_arrival_order() -> None:
    state = _state(limit=1, queue=3)
    first = await state.admit()
    order: list[int] = []

    async def wait(i: int) -> Admission:
        admission = await state.admit()
        order.append(i)
        return admission

    waiters = [asyncio.create_task(wait(i)) for i in range(3)]
    await asyncio.sleep(0.01)
    assert state.queued == 3 and state.active_streams == 1
    await _rejected(state)  # queue full: refused at once, not queued
    first.release()
    for i in range(3):
        admission = await waiters[i]
        assert order == list(range(i + 1)) and state.active_streams == 1
        admission.release()
    assert state.active_streams == 0 and state.queued == 0 and state.idle.is_set()


async def test_a_newcomer_does_not_overtake_waiters() -> None:
    state = _state(limit=1, queue=2)
    first = await state.admit()
    waiter = asyncio.create_task(state.admit())
    await asyncio.sleep(0.01)
    first.release()  # the slot goes to the waiter, not to whoever asks next
    await _assert_queues_behind(state)
    (await waiter).release()


async def _assert_queues_behind(state: ServiceState) -> None:
    newcomer = asyncio.create_task(state.admit())
    await asyncio.sleep(0.01)
    assert not newcomer.done() and state.queued == 1  # it queued behind the slot's new owner
    newcomer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await newcomer


async def test_the_wait_times_out_with_resource_exhausted() -> None:
    state = _state(limit=1, queue=2, timeout=0.2)
    held = await state.admit()
    started = time.monotonic()
    error = await _rejected(state)
    waited = time.monotonic() - started
    assert 0.15 <= waited < 1.0, waited
    assert "0.2s" in error.message and error.retry_after_s == 1
    assert state.queued == 0 and state.active_streams == 1
    held.release()
    assert state.active_streams == 0


async def test_cancelled_waiters_leave_the_queue_and_lose_no_slot() -> None:
    state = _state(limit=1, queue=4)
    held = await state.admit()
    waiters = [asyncio.create_task(state.admit()) for _ in range(4)]
    await asyncio.sleep(0.01)
    assert state.queued == 4
    for task in waiters[:3]:
        task.cancel()
    await asyncio.gather(*waiters[:3], return_exceptions=True)
    assert state.queued == 1
    held.release()
    last = await waiters[3]
    assert state.active_streams == 1
    last.release()
    assert state.active_streams == 0 and state.queued == 0


async def test_a_slot_handed_to_a_waiter_being_cancelled_is_passed_on() -> None:
    state = _state(limit=1, queue=2)
    held = await state.admit()
    doomed = asyncio.create_task(state.admit())
    heir = asyncio.create_task(state.admit())
    await asyncio.sleep(0.01)
    held.release()  # hands the slot to `doomed` ...
    doomed.cancel()  # ... which is cancelled before it can run: the slot must go on to `heir`
    with pytest.raises(asyncio.CancelledError):
        await doomed
    admission = await asyncio.wait_for(heir, 1)
    assert state.active_streams == 1
    admission.release()
    assert state.active_streams == 0 and state.idle.is_set()


async def test_draining_fails_the_waiters_with_unavailable() -> None:
    state = _state(limit=1, queue=2)
    held = await state.admit()
    waiters = [asyncio.create_task(state.admit()) for _ in range(2)]
    await asyncio.sleep(0.01)
    state.set_phase(Phase.DRAINING)
    for task in waiters:
        with pytest.raises(ServiceError) as raised:
            await task
        assert raised.value.code == grpc.StatusCode.UNAVAILABLE and raised.value.reason == "DRAINING"
    assert state.queued == 0 and state.active_streams == 1
    held.release()
    assert state.idle.is_set()


async def _generate(stub: inference_pb2_grpc.InferenceServiceStub, max_tokens: int) -> tuple[str, float, str]:
    """One Generate: (status code name, seconds to the end, ErrorInfo reason)."""
    started = time.monotonic()
    call = stub.Generate(pb.GenerateRequest(messages=USER, max_tokens=max_tokens), timeout=30)
    try:
        kinds = [response.WhichOneof("event") async for response in call]
        assert kinds[-1] == "done"
        return "OK", time.monotonic() - started, ""
    except grpc.aio.AioRpcError as error:
        return error.code().name, time.monotonic() - started, error_reason(error)


async def test_queue_through_the_server(scripted_server: ServerFactory) -> None:
    """Limit 2, queue 2, 0.6 s timeout, streams of ~1.2 s: 2 run, 2 wait and time out, 2 are refused."""
    server = scripted_server(
        streaming_text(200),
        step_delay=0.02,
        max_concurrent_requests=2,
        admission_queue_size=2,
        admission_queue_timeout_seconds=0.6,
    )
    assert server.service is not None
    state = server.service.state
    tally = Tally("admission queue: timeout and full queue")
    async with grpc.aio.insecure_channel(server.target) as channel:
        stub = inference_pb2_grpc.InferenceServiceStub(channel)
        running = [asyncio.create_task(_generate(stub, 60)) for _ in range(2)]
        await asyncio.to_thread(wait_until, lambda: state.active_streams == 2)
        queued = [asyncio.create_task(_generate(stub, 60)) for _ in range(2)]
        await asyncio.to_thread(wait_until, lambda: state.queued == 2)
        refused = [await _generate(stub, 60) for _ in range(2)]
        results = [*await asyncio.gather(*running), *await asyncio.gather(*queued), *refused]
    for code, _, _ in results:
        tally.add(code)
    tally.report()
    (ok1, t1, _), (ok2, t2, _), (q1, w1, r1), (q2, w2, r2), (f1, l1, r3), (f2, l2, r4) = results
    assert ok1 == ok2 == "OK" and min(t1, t2) > 0.9  # the slots stayed taken past the queue timeout
    assert q1 == q2 == f1 == f2 == "RESOURCE_EXHAUSTED" and r1 == r2 == r3 == r4 == "OVERLOADED"
    assert 0.5 <= w1 < 1.0 and 0.5 <= w2 < 1.0, (w1, w2)  # waited for the timeout, then gave up
    assert l1 < 0.3 and l2 < 0.3, (l1, l2)  # queue full: at once
    assert state.queued == 0 and wait_until(lambda: state.active_streams == 0)


async def test_queued_requests_run_when_slots_free(scripted_server: ServerFactory) -> None:
    """Limit 1, queue 4, generous timeout: 5 requests at once all finish, one at a time."""
    server = scripted_server(
        streaming_text(40),
        step_delay=0.01,
        max_concurrent_requests=1,
        admission_queue_size=4,
        admission_queue_timeout_seconds=20,
    )
    assert server.service is not None
    state = server.service.state
    engine_peak = 0
    async with grpc.aio.insecure_channel(server.target) as channel:
        stub = inference_pb2_grpc.InferenceServiceStub(channel)
        tasks = [asyncio.create_task(_generate(stub, 15)) for _ in range(5)]
        while not all(task.done() for task in tasks):
            engine_peak = max(engine_peak, server.engine.num_unfinished_requests())
            await asyncio.sleep(0.005)
        results = [task.result() for task in tasks]
    tally = Tally("admission queue: queued requests served")
    for code, _, _ in results:
        tally.add(code)
    tally.report(engine_peak=engine_peak)
    assert [code for code, _, _ in results] == ["OK"] * 5
    assert engine_peak == 1  # the limit held: the queue is in front of the engine
    assert state.queued == 0 and state.active_streams == 0


async def test_a_cancelled_queued_call_leaves_the_queue(scripted_server: ServerFactory) -> None:
    server = scripted_server(
        streaming_text(200),
        step_delay=0.02,
        max_concurrent_requests=1,
        admission_queue_size=2,
        admission_queue_timeout_seconds=20,
    )
    assert server.service is not None
    state = server.service.state
    async with grpc.aio.insecure_channel(server.target) as channel:
        stub = inference_pb2_grpc.InferenceServiceStub(channel)
        running = stub.Generate(pb.GenerateRequest(messages=USER, max_tokens=150), timeout=30)
        await running.read()
        waiting = stub.Generate(pb.GenerateRequest(messages=USER, max_tokens=5), timeout=30)
        await asyncio.to_thread(wait_until, lambda: state.queued == 1)
        waiting.cancel()
        assert await asyncio.to_thread(wait_until, lambda: state.queued == 0, 5)
        assert state.active_streams == 1  # the cancelled waiter took no slot
        running.cancel()
        assert await asyncio.to_thread(wait_until, lambda: state.active_streams == 0, 5)
        code, _, _ = await _generate(stub, 3)  # and the slot came back
        assert code == "OK"
