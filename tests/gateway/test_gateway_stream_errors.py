"""Errors after a stream began (in-band SSE error events), streams without Done, and body limits."""

from __future__ import annotations

import json
from typing import Any

import grpc
import httpx
import openai
import pytest

from tests.clients.fake_service import Fail, FakeServer, Reply, content
from tests.gateway.test_gateway_errors import error_of

CHAT = {"model": "fake-model", "messages": [{"role": "user", "content": "hi"}]}


# --- errors after the stream began ---------------------------------------------------------------


def sse_data(text: str) -> list[str]:
    return [line[len("data: ") :] for line in text.splitlines() if line.startswith("data: ")]


def test_chat_error_mid_stream_is_a_final_event(
    fake: FakeServer, http: httpx.Client, fake_client: openai.OpenAI
) -> None:
    fake.servicer.generate_script = [
        Reply([content("partial")], then=Fail(grpc.StatusCode.INTERNAL, "engine fell over"))
    ]
    response = http.post("/v1/chat/completions", json={**CHAT, "stream": True})
    assert response.status_code == 200
    data = sse_data(response.text)
    assert json.loads(data[1])["choices"][0]["delta"]["content"] == "partial"
    assert json.loads(data[-1]) == {
        "error": {
            "message": "engine fell over",
            "type": "server_error",
            "param": None,
            "code": "internal_error",
        }
    }
    assert "[DONE]" not in data
    with pytest.raises(openai.APIError, match="engine fell over"):
        for _ in fake_client.chat.completions.create(
            model="fake-model", messages=[{"role": "user", "content": "x"}], stream=True
        ):
            pass


def test_responses_error_mid_stream_is_an_error_event(fake: FakeServer, http: httpx.Client) -> None:
    fake.servicer.generate_script = [
        Reply([content("partial")], then=Fail(grpc.StatusCode.RESOURCE_EXHAUSTED, "evicted", "OVERLOADED"))
    ]
    response = http.post("/v1/responses", json={"model": "fake-model", "input": "x", "stream": True})
    assert response.status_code == 200
    last = response.text.strip().split("\n\n")[-1]
    assert last.startswith("event: error\n")
    error = json.loads(last.split("data: ", 1)[1])
    assert (error["type"], error["code"], error["message"]) == ("error", "overloaded", "evicted")
    assert error["error"]["type"] == "rate_limit_error"


@pytest.mark.parametrize(
    "body",
    [
        b'{"model": "m", "messages": [{"role": "user", "content": "\\ud800"}]}',
        b'{"model": "m", "input": "x", "metadata": {"k": "\\udfff"}}',
        b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function", '
        b'"function": {"name": "f", "parameters": {"type": "object", "x": NaN}}}]}',
    ],
)
def test_text_protobuf_cannot_carry_is_a_400(fake: FakeServer, http: httpx.Client, body: bytes) -> None:
    path = "/v1/responses" if b'"input"' in body else "/v1/chat/completions"
    response = http.post(path, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    assert fake.servicer.requests == []


def test_stream_without_done_ends_with_an_error_event(fake: FakeServer, http: httpx.Client) -> None:
    fake.servicer.generate_script = [Reply([content("a")])]  # the service closed the stream early
    data = sse_data(http.post("/v1/chat/completions", json={**CHAT, "stream": True}).text)
    assert json.loads(data[-1])["error"]["message"] == "the service ended the stream without a done event"
    whole = http.post("/v1/chat/completions", json=CHAT)
    assert whole.status_code == 502


def test_errors_before_the_commit_timeout_are_http_errors_after_it_in_band(
    fake: FakeServer, start_gateway: Any
) -> None:
    gateway = start_gateway([fake.target], stream_commit_timeout=0.2)
    slow_fail = Fail(grpc.StatusCode.RESOURCE_EXHAUSTED, "busy", "OVERLOADED")
    fake.servicer.generate_script = [Reply([], delay_s=0.0, then=slow_fail)]
    early = httpx.post(gateway.url + "/v1/chat/completions", json={**CHAT, "stream": True})
    assert early.status_code == 429
    fake.servicer.generate_script = [Reply([content("late")], delay_s=0.5, then=slow_fail)]
    late = httpx.post(gateway.url + "/v1/chat/completions", json={**CHAT, "stream": True})
    assert late.status_code == 200
    data = sse_data(late.text)
    assert json.loads(data[0])["choices"][0]["delta"]["role"] == "assistant"
    assert json.loads(data[-1])["error"]["code"] == "overloaded"


def test_body_size_limit(fake: FakeServer, start_gateway: Any) -> None:
    gateway = start_gateway([fake.target], max_request_bytes=2048)
    big = {"model": "fake-model", "messages": [{"role": "user", "content": "x" * 4000}]}
    response = httpx.post(gateway.url + "/v1/chat/completions", json=big)
    assert response.status_code == 413 and error_of(response)["code"] == "request_too_large"

    def chunked() -> Any:
        yield json.dumps(big).encode()

    response = httpx.post(
        gateway.url + "/v1/chat/completions", content=chunked(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413  # no Content-Length: refused while reading
    assert error_of(response)["code"] == "request_too_large"
    assert fake.servicer.requests == []
    assert httpx.post(gateway.url + "/v1/chat/completions", json=CHAT).status_code == 200
