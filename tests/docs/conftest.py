"""The live stack the doc snippets run against: the session's real engine + gRPC server, and a
REST gateway in front of it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.gateway.gateway_thread import GatewayThread
from tests.support.server_thread import ServerThread


@pytest.fixture(scope="session")
def docs_gateway(live_server: ServerThread) -> Iterator[GatewayThread]:
    gateway = GatewayThread([live_server.target]).start()
    yield gateway
    gateway.stop()
