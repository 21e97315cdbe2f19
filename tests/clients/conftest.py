"""Fixtures and values shared by the client tests: a fake server per test, fast retries, a user
message and the retryable failure the fake answers with."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from gptoss import RetryPolicy

from tests.clients.fake_service import Fail, FakeServer

# Short backoffs keep retry tests fast while still exercising the sleep path.
FAST_RETRY = RetryPolicy(max_attempts=3, initial_backoff_s=0.01, max_backoff_s=0.05)
USER = [{"role": "user", "content": "hi"}]
UNAVAILABLE = Fail(grpc.StatusCode.UNAVAILABLE, "engine starting", "ENGINE_STARTING", {"retry_after_s": "0"})


@pytest.fixture
def fake() -> Iterator[FakeServer]:
    with FakeServer() as server:
        yield server
