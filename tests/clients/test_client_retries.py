"""The sync client against the fake server: which failures are retried (UNAVAILABLE before vs
after the first event), deadlines, and cancelling a stream that hangs until cancelled."""

from __future__ import annotations

import threading
import time

import grpc
import pytest
from gptoss import (
    Client,
    ContentDelta,
    DeadlineExceededError,
    OverloadedError,
    UnavailableError,
)

from tests.clients.conftest import FAST_RETRY, UNAVAILABLE, USER
from tests.clients.fake_service import Fail, FakeServer, Reply, content, done


def test_unavailable_before_first_event_is_retried(fake: FakeServer) -> None:
    fake.servicer.generate_script = [UNAVAILABLE, UNAVAILABLE, Reply([content("ok"), done()])]
    with Client(fake.target, retry=FAST_RETRY) as client:
        assert client.complete(messages=USER).content == "ok"
    assert len(fake.servicer.requests) == 3


def test_retries_stop_after_max_attempts(fake: FakeServer) -> None:
    fake.servicer.generate_script = [UNAVAILABLE]
    with Client(fake.target, retry=FAST_RETRY) as client, pytest.raises(UnavailableError) as info:
        client.complete(messages=USER)
    assert len(fake.servicer.requests) == FAST_RETRY.max_attempts
    assert info.value.reason == "ENGINE_STARTING"
    assert info.value.retry_after_s == 0.0


def test_unavailable_after_first_event_is_not_retried(fake: FakeServer) -> None:
    fake.servicer.generate_script = [
        Reply([content("partial")], then=UNAVAILABLE),
        Reply([content("again"), done()]),
    ]
    seen = []
    with Client(fake.target, retry=FAST_RETRY) as client, pytest.raises(UnavailableError):
        for event in client.generate(messages=USER):
            seen.append(event)
    assert seen == [ContentDelta("partial")]
    assert len(fake.servicer.requests) == 1


def test_other_codes_are_not_retried(fake: FakeServer) -> None:
    fake.servicer.generate_script = [
        Fail(grpc.StatusCode.RESOURCE_EXHAUSTED, "busy", "OVERLOADED", {"retry_after_s": "1"})
    ]
    with Client(fake.target, retry=FAST_RETRY) as client, pytest.raises(OverloadedError) as info:
        client.complete(messages=USER)
    assert len(fake.servicer.requests) == 1
    assert info.value.retry_after_s == 1.0
    assert info.value.code is grpc.StatusCode.RESOURCE_EXHAUSTED


def test_closing_the_iterator_cancels_the_call(fake: FakeServer) -> None:
    fake.servicer.generate_script = [Reply([content("first")], hang=True)]
    with Client(fake.target) as client:
        stream = client.generate(messages=USER)
        assert next(stream) == ContentDelta("first")
        assert not fake.servicer.cancelled.is_set()
        stream.close()
        assert fake.servicer.cancelled.wait(5), "server never saw the cancellation"
        with pytest.raises(StopIteration):
            next(stream)


def test_cancel_from_another_thread_ends_the_readers_loop_quietly(fake: FakeServer) -> None:
    fake.servicer.generate_script = [Reply([content("first")], hang=True)]
    with Client(fake.target) as client:
        stream = client.generate(messages=USER)
        timer = threading.Timer(0.3, stream.cancel)
        timer.start()
        assert list(stream) == [ContentDelta("first")]  # no exception: the caller asked for it
        assert fake.servicer.cancelled.wait(5)


def test_deadline_becomes_a_typed_error(fake: FakeServer) -> None:
    fake.servicer.generate_script = [Reply([], hang=True)]
    with Client(fake.target) as client:
        started = time.monotonic()
        with pytest.raises(DeadlineExceededError) as info:
            client.complete(messages=USER, timeout=0.3)
    assert time.monotonic() - started < 3
    assert info.value.code is grpc.StatusCode.DEADLINE_EXCEEDED


def test_client_default_timeout_applies_to_every_call(fake: FakeServer) -> None:
    fake.servicer.generate_script = [Reply([], hang=True)]
    with Client(fake.target, timeout=0.2) as client, pytest.raises(DeadlineExceededError):
        client.complete(messages=USER)


def test_retries_share_one_deadline(fake: FakeServer) -> None:
    """With backoff longer than the time left, the client gives up instead of overrunning the deadline."""
    fake.servicer.generate_script = [
        Fail(grpc.StatusCode.UNAVAILABLE, "draining", "DRAINING", {"retry_after_s": "5"})
    ]
    started = time.monotonic()
    with Client(fake.target) as client, pytest.raises(UnavailableError):
        client.complete(messages=USER, timeout=1.0)
    assert time.monotonic() - started < 1.0
    assert len(fake.servicer.requests) == 1
