"""Bad input never costs the caller more than its own request: deep or huge tool schemas are 400s
naming the param, an unexpected error is a 500 with x-request-id, and the keep-alive connection
keeps working after either. And the gateway answers clearly while the engine is still starting."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from gateway import _translate_chat
from tests.clients.fake_service import FakeServer, Reply, content, done
from tests.gateway.gateway_thread import GatewayThread

USER = [{"role": "user", "content": "hi"}]


def nested(depth: int) -> dict[str, Any]:
    """A schema of `depth` nested objects (dict levels)."""
    schema: dict[str, Any] = {"type": "object"}
    for _ in range(depth - 1):
        schema = {"type": "object", "properties": {"x": schema}}
    return schema


def chat_with_tool(parameters: dict[str, Any]) -> dict[str, Any]:
    tool = {"type": "function", "function": {"name": "f", "parameters": parameters}}
    return {"model": "fake-model", "messages": USER, "tools": [tool]}


def responses_with_tool(parameters: dict[str, Any]) -> dict[str, Any]:
    return {
        "model": "fake-model",
        "input": "x",
        "tools": [{"type": "function", "name": "f", "parameters": parameters}],
    }


def raw_nested_json(depth: int) -> bytes:
    """A tool schema nested `depth` levels, written as text (json.dumps itself would recurse)."""
    inner = '{"type":"object","properties":{"x":' * (depth - 1) + '{"type":"object"}' + "}}" * (depth - 1)
    return (
        '{"model":"fake-model","messages":[{"role":"user","content":"hi"}],'
        '"tools":[{"type":"function","function":{"name":"f","parameters":' + inner + "}}]}"
    ).encode()


def assert_good_request_works(http: httpx.Client, fake: FakeServer) -> None:
    fake.servicer.generate_script = [Reply([content("fine"), done()])]
    good = http.post("/v1/chat/completions", json={"model": "fake-model", "messages": USER})
    assert good.status_code == 200, good.text
    assert good.json()["choices"][0]["message"]["content"] == "fine"


@pytest.mark.parametrize("depth", [8, 16, 32, 400, 1500])
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/responses"])
def test_deep_tool_schema_is_a_400_and_the_connection_survives(
    fake: FakeServer, fake_gateway: GatewayThread, depth: int, path: str
) -> None:
    fake.servicer.generate_script = [Reply([content("ok"), done()])]
    with httpx.Client(base_url=fake_gateway.url, timeout=30) as http:
        if path.endswith("completions"):
            body = raw_nested_json(depth) if depth > 300 else None
            response = (
                http.post(path, content=body, headers={"content-type": "application/json"})
                if body is not None
                else http.post(path, json=chat_with_tool(nested(depth)))
            )
            param = "tools[0].function.parameters"
        else:
            response = http.post(path, json=responses_with_tool(nested(min(depth, 300))))
            param = "tools[0].parameters"
        if depth <= 12:  # 2 containers per level: up to 12 levels are within the cap
            assert response.status_code == 200, response.text
        else:
            assert response.status_code == 400, response.text
            assert response.json()["error"]["param"] == param
            assert "deeper than" in response.json()["error"]["message"]
        assert response.headers["x-request-id"]
        assert_good_request_works(http, fake)


def test_huge_tool_schema_is_a_400(fake: FakeServer, http: httpx.Client) -> None:
    schema = {
        "type": "object",
        "properties": {f"p{i}": {"type": "string", "description": "d" * 100} for i in range(3000)},
    }
    response = http.post("/v1/chat/completions", json=chat_with_tool(schema))
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "tools[0].function.parameters"
    assert "larger than" in response.json()["error"]["message"]
    assert fake.servicer.requests == []


def test_unexpected_error_is_a_500_with_request_id_and_the_connection_survives(
    fake: FakeServer, fake_gateway: GatewayThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = _translate_chat.to_generate_options
    calls = {"n": 0}

    def fails_once(req: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("a bug")
        return real(req)

    monkeypatch.setattr(_translate_chat, "to_generate_options", fails_once)
    with httpx.Client(base_url=fake_gateway.url, timeout=30) as http:
        response = http.post("/v1/chat/completions", json={"model": "fake-model", "messages": USER})
        assert response.status_code == 500
        assert response.headers["x-request-id"]
        assert response.json()["error"]["type"] == "server_error"
        assert_good_request_works(http, fake)


def test_engine_starting_is_a_503_until_a_backend_serves(
    fake: FakeServer, start_gateway: Callable[..., GatewayThread]
) -> None:
    fake.set_readiness(False)  # the service is up, its engine still loading
    started = time.monotonic()
    gateway = start_gateway([fake.target])
    assert time.monotonic() - started < 5  # the gateway does not wait for the engine
    with httpx.Client(base_url=gateway.url, timeout=30) as http:
        assert http.get("/ready").status_code == 503
        for method, path, body in (
            ("POST", "/v1/chat/completions", {"model": "fake-model", "messages": USER}),
            ("POST", "/v1/responses", {"model": "fake-model", "input": "x", "stream": True}),
            ("GET", "/v1/models", None),
        ):
            response = http.request(method, path, json=body)
            assert response.status_code == 503, response.text
            assert response.json()["error"]["code"] == "engine_starting"
            assert int(response.headers["retry-after"]) >= 1
        assert fake.servicer.requests == []
        fake.set_readiness(True)
        deadline = time.monotonic() + 10
        while http.get("/ready").status_code != 200:
            assert time.monotonic() < deadline, "/ready never became 200"
            time.sleep(0.05)
        assert_good_request_works(http, fake)
