"""The gateway's transport and edge hardening (issue 17, items 3, 7 and 9): slow or broken clients
cannot hold sockets, excess connections get 503 and the service stays usable, bodies get the right
codes, HEAD answers like GET, the API docs are off by default, and an empty key list refuses to start.

All against `gateway._server.uvicorn_config` (the product's server setup) over a scripted service.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from gateway import GatewaySettings, create_app
from gateway._settings import NoApiKeysError, build_parser, parse_args
from tests.reliability.hardened_gateway import HardenedGateway
from tests.reliability.helpers import Tally
from tests.reliability.service_process import ROOT
from tests.support.scripted_engine import streaming_text
from tests.support.server_thread import ServerThread

ServerFactory = Callable[..., ServerThread]


@pytest.fixture
def backend(scripted_server: ServerFactory) -> ServerThread:
    return scripted_server(streaming_text(5))


@pytest.fixture(params=["auto", "h11"])
def parser(request: pytest.FixtureRequest) -> str:
    """Both HTTP parsers: httptools where installed (auto), h11 as in the gateway image."""
    return str(request.param)


@pytest.fixture
def gateway(backend: ServerThread, parser: str) -> Iterator[HardenedGateway]:
    with HardenedGateway([backend.target], parser, header_timeout=1.0, body_timeout=1.0) as gw:
        yield gw


def test_slowloris_headers_are_closed_within_the_header_timeout(gateway: HardenedGateway) -> None:
    conn = gateway.connect()
    started = time.monotonic()
    conn.send(b"GET /health HTTP/1.1\r\n")
    closed = False
    for byte in b"host: slow\r\nx-a: b\r\n":  # one byte every 0.4 s, never finishing the head
        closed, _ = conn.closed_within(0.4)
        if closed:
            break
        conn.send(bytes([byte]))
    closed = closed or conn.closed_within(2.0)[0]
    elapsed = time.monotonic() - started
    assert closed and elapsed < 2.5, f"slow head still open after {elapsed:.1f}s"
    tally = Tally(f"gateway slowloris head, 1 byte / 0.4 s ({gateway.parser})")
    tally.add("closed")
    tally.report(header_timeout_s=1.0, closed_after_s=round(elapsed, 2))


def test_an_idle_socket_is_closed_and_told_408(gateway: HardenedGateway) -> None:
    conn = gateway.connect()
    closed, sent = conn.closed_within(3.0)
    assert closed and sent.startswith(b"HTTP/1.1 408 ")
    assert json.loads(sent.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "request_timeout"


def test_slow_body_is_closed_within_the_body_timeout(gateway: HardenedGateway) -> None:
    conn = gateway.connect()
    head = b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
    conn.send(head + b"content-length: 200\r\n\r\n{")
    started = time.monotonic()
    closed, sent = False, b""
    for byte in b'"model": "m", "messages": [':  # 1 byte / 2 s, as the adversarial pass sent
        closed, sent = conn.closed_within(2.0)
        if closed:
            break
        conn.send(bytes([byte]))
    elapsed = time.monotonic() - started
    assert closed and elapsed < 2.5, f"slow body still open after {elapsed:.1f}s"
    assert sent.startswith(b"HTTP/1.1 408 ")
    tally = Tally(f"gateway slow body, 1 byte / 2 s ({gateway.parser})")
    tally.add("closed_408")
    tally.report(body_timeout_s=1.0, closed_after_s=round(elapsed, 2))


def test_http_0_9_is_refused_and_closed(gateway: HardenedGateway) -> None:
    conn = gateway.connect()
    conn.send(b"GET /health\r\n")
    closed, sent = conn.closed_within(2.0)
    assert closed and sent.startswith(b"HTTP/1.1 400 "), sent[:80]


def test_an_oversize_head_is_431(backend: ServerThread, parser: str) -> None:
    with HardenedGateway([backend.target], parser, max_header_bytes=4096) as gw:
        conn = gw.connect()
        conn.send(b"GET /health HTTP/1.1\r\nhost: x\r\nx-big: " + b"a" * 8192 + b"\r\n\r\n")
        closed, sent = conn.closed_within(2.0)
        assert closed and sent.startswith(b"HTTP/1.1 431 ")


def test_the_connection_cap_refuses_excess_with_503_and_the_service_stays_usable(
    backend: ServerThread, parser: str
) -> None:
    with HardenedGateway([backend.target], parser, max_connections=3, header_timeout=30) as gw:
        held = [gw.connect() for _ in range(3)]
        time.sleep(0.2)
        refused = httpx.get(gw.url + "/health", timeout=5)
        assert refused.status_code == 503
        for conn in held:
            conn.close()
        time.sleep(0.2)
        assert httpx.get(gw.url + "/health", timeout=5).status_code == 200
        with httpx.Client(base_url=gw.url, timeout=30) as client:  # and inference works again
            body = {"model": backend.settings.model_id, "messages": [{"role": "user", "content": "hi"}]}
            assert client.post("/v1/chat/completions", json=body).status_code == 200


def test_idle_sockets_holding_the_cap_are_dropped_by_the_header_timeout(
    backend: ServerThread, parser: str
) -> None:
    """The adversarial case: sockets that never send anything, never closed by their owner."""
    with HardenedGateway([backend.target], parser, max_connections=20, header_timeout=1.0) as gw:
        held = [gw.connect() for _ in range(20)]
        time.sleep(0.2)
        assert httpx.get(gw.url + "/health", timeout=5).status_code == 503
        started = time.monotonic()
        assert all(conn.closed_within(3.0)[0] for conn in held)
        freed = time.monotonic() - started
        assert httpx.get(gw.url + "/health", timeout=5).status_code == 200
        tally = Tally(f"gateway connection cap held by idle sockets ({gw.parser})")
        tally.add("idle_sockets_closed", len(held))
        tally.report(cap=20, freed_after_s=round(freed, 2))
        for conn in held:
            conn.close()


def test_a_chunked_body_over_the_limit_is_413(backend: ServerThread, parser: str) -> None:
    with HardenedGateway([backend.target], parser, max_request_bytes=64 << 10) as gw:

        def chunks() -> Iterator[bytes]:
            yield b'{"model": "m", "messages": [{"role": "user", "content": "'
            for _ in range(256):
                yield b"x" * 1024

        response = httpx.post(gw.url + "/v1/chat/completions", content=chunks(), timeout=30)
        assert response.status_code == 413, response.text
        assert response.json()["error"]["code"] == "request_too_large"
        assert httpx.get(gw.url + "/health").status_code == 200


def test_json_nested_100k_deep_is_400_invalid_json(gateway: HardenedGateway) -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    response = httpx.post(gateway.url + "/v1/chat/completions", content=body, timeout=30)
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_json"


@pytest.mark.parametrize("path", ["/health", "/ready", "/metrics", "/v1/models"])
def test_head_answers_like_get_without_a_body(gateway: HardenedGateway, path: str) -> None:
    conn = gateway.connect()
    got = conn.request("GET", path)
    head = conn.request("HEAD", path)  # same connection: a body sent for HEAD would corrupt the next reply
    assert head.status == got.status == 200 and head.body == b""
    assert head.headers["content-type"] == got.headers["content-type"]
    assert conn.request("GET", "/health").status == 200


def test_head_on_a_post_route_is_405_not_a_crash(gateway: HardenedGateway) -> None:
    assert httpx.head(gateway.url + "/v1/chat/completions").status_code == 405


DOCS = ("/docs", "/redoc", "/openapi.json")


def test_api_docs_are_off_by_default(gateway: HardenedGateway) -> None:
    for path in DOCS:
        assert httpx.get(gateway.url + path).status_code == 404, path


def test_api_docs_when_on_are_behind_the_keys(backend: ServerThread) -> None:
    with HardenedGateway([backend.target], docs=True) as open_docs:
        for path in DOCS:
            assert httpx.get(open_docs.url + path).status_code == 200, path
    with HardenedGateway([backend.target], docs=True, api_keys=["sk-docs"]) as gw:
        for path in DOCS:
            assert httpx.get(gw.url + path).status_code == 401, path
            allowed = httpx.get(gw.url + path, headers={"authorization": "Bearer sk-docs"})
            assert allowed.status_code == 200, path
        assert (
            "paths" in httpx.get(gw.url + "/openapi.json", headers={"authorization": "Bearer sk-docs"}).json()
        )


def test_bearer_is_case_insensitive(backend: ServerThread) -> None:
    with HardenedGateway([backend.target], api_keys=["sk-case"]) as gw:
        for scheme in ("Bearer", "bearer", "BEARER", "bEaReR"):
            answer = httpx.get(gw.url + "/v1/models", headers={"authorization": f"{scheme} sk-case"})
            assert answer.status_code == 200, scheme
        assert httpx.get(gw.url + "/v1/models", headers={"authorization": "Basic sk-case"}).status_code == 401


@pytest.mark.parametrize("keys", [",", " , ,", ""])
def test_a_blank_key_list_refuses_to_start(monkeypatch: pytest.MonkeyPatch, keys: str) -> None:
    monkeypatch.setenv("GPTOSS_GATEWAY_API_KEYS", keys)
    with pytest.raises(NoApiKeysError):
        create_app(GatewaySettings())
    monkeypatch.setenv("GPTOSS_GATEWAY_ALLOW_NO_AUTH", "1")
    create_app(GatewaySettings())  # explicitly without auth: starts


def test_an_empty_key_file_refuses_to_start(tmp_path: Path) -> None:
    empty = tmp_path / "keys"
    empty.write_text("# no keys yet\n\n")
    with pytest.raises(NoApiKeysError):
        create_app(GatewaySettings(api_key_file=empty))
    assert create_app(GatewaySettings(api_key_file=empty, allow_no_auth=True)) is not None
    assert GatewaySettings().all_api_keys() == []  # nothing configured at all: auth off, as before


def test_python_m_gateway_exits_2_on_a_blank_key_list() -> None:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{ROOT / 'clients/python/src'}:{ROOT}"}
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "--port", "0"],
        env={**env, "GPTOSS_GATEWAY_API_KEYS": ","},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 2 and "refusing to start without auth" in done.stderr


def test_a_key_given_as_a_flag_warns(capsys: pytest.CaptureFixture[str]) -> None:
    settings = parse_args(["--api-key", "sk-flag", "--backend-api-key", "sk-backend"])
    assert settings.all_api_keys() == ["sk-flag"]
    err = capsys.readouterr().err
    assert "--api-key puts a key in the process's command line" in err and "sk-flag" not in err
    assert "--backend-api-key puts a key" in err


def test_the_backend_key_can_come_from_a_file(tmp_path: Path) -> None:
    key_file = tmp_path / "backend-key"
    key_file.write_text("sk-from-file\n")
    assert parse_args(["--backend-api-key-file", str(key_file)]).backend_key() == "sk-from-file"


def test_every_setting_is_a_flag_with_a_description() -> None:
    help_text = " ".join(build_parser().format_help().split())
    flags = {"backends": "--backend", "api_keys": "--api-key"}
    for name, field in GatewaySettings.model_fields.items():
        flag = flags.get(name, "--" + name.replace("_", "-"))
        assert field.description, name
        assert flag in help_text and f"GPTOSS_GATEWAY_{name.upper()}" in help_text, name
    parsed = parse_args(
        ["--header-timeout", "3", "--max-connections", "7", "--docs", "--no-backend-health-check"]
    )
    assert parsed.header_timeout == 3 and parsed.max_connections == 7
    assert parsed.docs and not parsed.backend_health_check
