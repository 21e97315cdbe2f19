"""Reliability fixtures. The gateway fixtures are reused from tests/gateway/conftest.py (not copied)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from service import metrics as service_metrics
from tests.gateway.conftest import live_gateway, start_gateway
from tests.reliability.helpers import REPORTED
from tests.support.server_thread import ServerThread

__all__ = ["live_gateway", "start_gateway"]


@pytest.fixture
def metrics_url(live_server: ServerThread) -> Iterator[str]:
    """The live server's metrics endpoint, with the active-streams gauge bound to *its* state.

    The gauge is process-global and follows the last server started in this process (scripted
    servers in other tests), so bind it back to the live server for the duration of the test.
    """
    assert live_server.service is not None and live_server.service.metrics_port
    service_metrics.bind_state(live_server.service.state)
    yield f"http://127.0.0.1:{live_server.service.metrics_port}/metrics"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Requests tried and outcomes seen per test, for the issue's closing note."""
    if REPORTED:
        terminalreporter.section("reliability numbers")
        for line in REPORTED:
            terminalreporter.write_line(line)
