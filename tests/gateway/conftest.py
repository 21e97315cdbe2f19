"""Gateway fixtures: the gateway (uvicorn, loopback) over the fake service, a scripted service or the live one."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.clients.fake_service import FakeServer
from tests.support.gateway_thread import GatewayThread
from tests.support.postgres import Postgres, find_bin_dir
from tests.support.server_thread import ServerThread


@pytest.fixture
def start_gateway() -> Iterator[Callable[..., GatewayThread]]:
    """Factory: a gateway over the given backends, stopped after the test."""
    started: list[GatewayThread] = []

    def start(backends: list[str], **settings: Any) -> GatewayThread:
        gateway = GatewayThread(backends, **settings).start()
        started.append(gateway)
        return gateway

    yield start
    for gateway in started:
        gateway.stop()


@pytest.fixture
def fake() -> Iterator[FakeServer]:
    with FakeServer() as server:
        yield server


@pytest.fixture
def fake_gateway(fake: FakeServer, start_gateway: Callable[..., GatewayThread]) -> GatewayThread:
    return start_gateway([fake.target])


@pytest.fixture
def http(fake_gateway: GatewayThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake_gateway.url, timeout=30) as client:
        yield client


@pytest.fixture
def fake_client(fake_gateway: GatewayThread) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake_gateway.url + "/v1", api_key="unused", max_retries=0, timeout=30)


@pytest.fixture(scope="session")
def live_gateway(live_server: ServerThread) -> Iterator[GatewayThread]:
    """The product path: gateway -> real gRPC server -> real vLLM CPU engine."""
    gateway = GatewayThread([live_server.target]).start()
    yield gateway
    gateway.stop()


@pytest.fixture(scope="session")
def model_id(live_server: ServerThread) -> str:
    return live_server.settings.model_id


@pytest.fixture
def client(live_gateway: GatewayThread) -> openai.OpenAI:
    return openai.OpenAI(base_url=live_gateway.url + "/v1", api_key="unused", max_retries=0, timeout=120)


@pytest.fixture
def async_client(live_gateway: GatewayThread) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=live_gateway.url + "/v1", api_key="unused", max_retries=0, timeout=120)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """One Postgres server for the session (each test gets its own database from `store_url`)."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        pytest.skip("Postgres is not installed (initdb not in PATH nor /usr/lib/postgresql/*/bin)")
    server = Postgres(bin_dir).start()
    yield server
    server.close()


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty store database: a SQLite file, or a new database on the session's Postgres."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
    server: Postgres = request.getfixturevalue("postgres")
    return server.new_database()
