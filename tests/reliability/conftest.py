"""Reliability fixtures. The gateway fixtures are reused from tests/gateway/conftest.py (not copied)."""

from __future__ import annotations

import pytest

from tests.gateway.conftest import live_gateway, start_gateway
from tests.reliability.helpers import REPORTED

__all__ = ["live_gateway", "start_gateway"]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Requests tried and outcomes seen per test, for the issue's closing note."""
    if REPORTED:
        terminalreporter.section("reliability numbers")
        for line in REPORTED:
            terminalreporter.write_line(line)
