"""Fixtures for the client tests: a fake server per test, and fast retries."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from gptoss import RetryPolicy

from tests.clients.fake_service import FakeServer

# Short backoffs keep retry tests fast while still exercising the sleep path.
FAST_RETRY = RetryPolicy(max_attempts=3, initial_backoff_s=0.01, max_backoff_s=0.05)


@pytest.fixture
def fake() -> Iterator[FakeServer]:
    with FakeServer() as server:
        yield server
