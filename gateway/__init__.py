"""OpenAI-compatible REST gateway over the gptoss.v1 gRPC inference service."""

from gateway._settings import GatewaySettings
from gateway.app import create_app

__all__ = ["GatewaySettings", "create_app"]
