"""Schemathesis over the gateway's own OpenAPI schema: generated valid and invalid requests never get a 5xx,
and every answer matches the documented status codes, content types and shapes.

The backend is the real gRPC server (validation, Harmony render, servicer) on a scripted engine,
so hundreds of generated requests run in seconds instead of hours of CPU decoding.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks

from gateway import create_app
from service.config import Settings
from service.harmony import tokens as tk
from tests.support.gateway_thread import GatewayThread
from tests.support.scripted_engine import ScriptedEngine
from tests.support.server_thread import ServerThread

schema = schemathesis.openapi.from_dict(create_app().openapi())

CHECKS: list[Any] = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]


@pytest.fixture(scope="module")
def schema_gateway() -> Iterator[GatewayThread]:
    reply = [list(tk.encoding().encode("<|channel|>final<|message|>ok<|return|>", allowed_special="all"))]
    engine = ScriptedEngine(reply)

    async def factory(_settings: Settings) -> ScriptedEngine:
        return engine

    server = ServerThread(Settings(profile="cpu-tiny", port=0, metrics_port=None), factory).start(
        ready_timeout=10
    )
    gateway = GatewayThread([server.target]).start()
    yield gateway
    gateway.stop()
    server.stop()


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors_and_schema_conformance(
    case: schemathesis.Case, schema_gateway: GatewayThread
) -> None:
    case.call_and_validate(base_url=schema_gateway.url, checks=CHECKS, timeout=30)
