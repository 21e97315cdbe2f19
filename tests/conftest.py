"""Session fixtures: ONE real vLLM CPU engine behind a real gRPC server, shared by every test."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import grpc
import pytest
from gptoss.v1 import inference_pb2_grpc

from service.config import Settings
from tests.support.harmony_tiny import ensure_harmony_tiny
from tests.support.scripted_engine import ScriptedEngine
from tests.support.server_thread import ServerThread


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


@pytest.fixture(scope="session")
def live_server() -> Iterator[ServerThread]:
    """The product path: cpu-tiny profile (trained harmony-tiny weights), real vLLM engine, port 0."""
    ensure_harmony_tiny()
    server = ServerThread(Settings(profile="cpu-tiny", port=0, metrics_port=0)).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def channel(live_server: ServerThread) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(live_server.target) as chan:
        yield chan


@pytest.fixture(scope="session")
def stub(channel: grpc.Channel) -> inference_pb2_grpc.InferenceServiceStub:
    return inference_pb2_grpc.InferenceServiceStub(channel)


@pytest.fixture
def scripted_server() -> Iterator[Callable[..., ServerThread]]:
    """Factory: a server on a ScriptedEngine (test double) with optional settings overrides."""
    started: list[ServerThread] = []

    def start(
        script: Sequence[Sequence[int]] | Callable[[list[int]], Sequence[Sequence[int]]],
        step_delay: float = 0.0,
        **overrides: Any,
    ) -> ServerThread:
        engine = ScriptedEngine(script, step_delay)

        async def factory(_settings: Settings) -> ScriptedEngine:
            return engine

        settings = Settings(profile="cpu-tiny", port=0, metrics_port=None, **overrides)
        server = ServerThread(settings, factory).start(ready_timeout=10)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
