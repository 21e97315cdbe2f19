"""Moved to tests/support/gateway_thread.py; this name stays for tests written in parallel branches."""

from tests.support.gateway_thread import GatewayThread

__all__ = ["GatewayThread"]
