"""Every error path: gRPC status -> OpenAI error (pure and over HTTP), bad requests, in-stream errors."""

from __future__ import annotations

import json
from typing import Any

import grpc
import httpx
import openai
import pytest
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

from gateway._errors import from_grpc
from tests.clients.fake_service import Fail, FakeServer, Reply, content
from tests.gateway.gateway_thread import GatewayThread

CHAT = {"model": "fake-model", "messages": [{"role": "user", "content": "hi"}]}


def rpc_error(code: grpc.StatusCode, reason: str | None = None, **metadata: str) -> grpc.aio.AioRpcError:
    trailing: tuple[tuple[str, str | bytes], ...] = ()
    if reason is not None:
        info = error_details_pb2.ErrorInfo(reason=reason, domain="gptoss.v1", metadata=metadata)
        packed = any_pb2.Any()
        packed.Pack(info)
        status = status_pb2.Status(code=code.value[0], message="msg", details=[packed])
        trailing = (("grpc-status-details-bin", status.SerializeToString()),)
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(*trailing), "msg")


@pytest.mark.parametrize(
    ("code", "reason", "metadata", "status", "err_code", "param", "retry_after"),
    [
        (
            grpc.StatusCode.INVALID_ARGUMENT,
            "CONTEXT_LENGTH_EXCEEDED",
            {"param": "messages"},
            400,
            "context_length_exceeded",
            "messages",
            None,
        ),
        (
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_REQUEST",
            {"param": "tools[0].parameters"},
            400,
            None,
            "tools[0].parameters",
            None,
        ),
        (grpc.StatusCode.UNAUTHENTICATED, "INVALID_API_KEY", {}, 401, "invalid_api_key", None, None),
        (
            grpc.StatusCode.NOT_FOUND,
            "MODEL_NOT_FOUND",
            {"param": "model"},
            404,
            "model_not_found",
            "model",
            None,
        ),
        (grpc.StatusCode.NOT_FOUND, None, {}, 404, "model_not_found", "model", None),
        (
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "OVERLOADED",
            {"retry_after_s": "2.5"},
            429,
            "overloaded",
            None,
            3,
        ),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, None, {}, 429, "overloaded", None, 1),
        (
            grpc.StatusCode.UNAVAILABLE,
            "ENGINE_STARTING",
            {"retry_after_s": "7"},
            503,
            "engine_starting",
            None,
            7,
        ),
        (grpc.StatusCode.UNAVAILABLE, "DRAINING", {}, 503, "draining", None, 1),
        (grpc.StatusCode.DEADLINE_EXCEEDED, None, {}, 504, "timeout", None, None),
        (grpc.StatusCode.INTERNAL, None, {}, 500, "internal_error", None, None),
    ],
)
def test_grpc_status_mapping(
    code: grpc.StatusCode,
    reason: str | None,
    metadata: dict[str, str],
    status: int,
    err_code: str | None,
    param: str | None,
    retry_after: int | None,
) -> None:
    err = from_grpc(rpc_error(code, reason, **metadata))
    assert (err.status, err.code, err.param, err.retry_after) == (status, err_code, param, retry_after)
    assert err.body()["error"]["message"] == "msg"
    assert ("Retry-After" in err.headers()) == (retry_after is not None)


def test_undecodable_details_are_ignored() -> None:
    bad = grpc.aio.AioRpcError(
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.aio.Metadata(),
        grpc.aio.Metadata(("grpc-status-details-bin", b"\xff\x00garbage")),
        "bad",
    )
    assert from_grpc(bad).status == 400


# --- over HTTP, against the fake service ----------------------------------------------------------


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    return dict(body["error"])


@pytest.mark.parametrize(
    ("fail", "status", "sdk_error", "retry_after"),
    [
        (
            Fail(
                grpc.StatusCode.INVALID_ARGUMENT, "too long", "CONTEXT_LENGTH_EXCEEDED", {"param": "messages"}
            ),
            400,
            openai.BadRequestError,
            None,
        ),
        (
            Fail(grpc.StatusCode.UNAUTHENTICATED, "no key", "INVALID_API_KEY"),
            401,
            openai.AuthenticationError,
            None,
        ),
        (
            Fail(grpc.StatusCode.NOT_FOUND, "no model", "MODEL_NOT_FOUND", {"param": "model"}),
            404,
            openai.NotFoundError,
            None,
        ),
        (
            Fail(grpc.StatusCode.RESOURCE_EXHAUSTED, "busy", "OVERLOADED", {"retry_after_s": "4"}),
            429,
            openai.RateLimitError,
            "4",
        ),
        (
            Fail(grpc.StatusCode.UNAVAILABLE, "starting", "ENGINE_STARTING", {"retry_after_s": "5"}),
            503,
            openai.InternalServerError,
            "5",
        ),
        (Fail(grpc.StatusCode.DEADLINE_EXCEEDED, "slow"), 504, openai.InternalServerError, None),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_service_errors_reach_the_sdk(
    fake: FakeServer,
    fake_gateway: GatewayThread,
    fake_client: openai.OpenAI,
    fail: Fail,
    status: int,
    sdk_error: type[openai.APIStatusError],
    retry_after: str | None,
    stream: bool,
) -> None:
    fake.servicer.generate_script = [fail]
    with pytest.raises(sdk_error) as info:
        fake_client.chat.completions.create(
            model="fake-model", messages=[{"role": "user", "content": "hi"}], stream=stream
        )
    assert info.value.status_code == status
    assert info.value.response.headers.get("retry-after") == retry_after
    error = error_of(info.value.response)
    assert error["message"] == fail.message
    if fail.reason == "CONTEXT_LENGTH_EXCEEDED":
        assert (error["code"], error["param"]) == ("context_length_exceeded", "messages")
    with pytest.raises(sdk_error):
        fake_client.responses.create(model="fake-model", input="hi", stream=stream)


def test_real_deadline_is_504(fake: FakeServer, start_gateway: Any) -> None:
    fake.servicer.generate_script = [Reply([content("a")], hang=True)]
    gateway = start_gateway([fake.target], request_timeout=0.5)
    response = httpx.post(gateway.url + "/v1/chat/completions", json=CHAT, timeout=10)
    assert response.status_code == 504 and error_of(response)["code"] == "timeout"
    assert fake.servicer.cancelled.wait(5)


def test_unreachable_backend_is_503(start_gateway: Any) -> None:
    gateway = start_gateway(["127.0.0.1:1"])
    response = httpx.post(gateway.url + "/v1/chat/completions", json=CHAT, timeout=30)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert httpx.get(gateway.url + "/ready").status_code == 503
    assert httpx.get(gateway.url + "/health").status_code == 200


@pytest.mark.parametrize(
    ("body", "headers", "param", "fragment"),
    [
        (
            b'{"model": "m", "messages": [',
            {"content-type": "application/json"},
            None,
            "could not parse the JSON",
        ),
        (b"not json at all", {}, None, "could not parse the JSON"),
        (b"", {"content-type": "application/json"}, None, "missing"),
        (b"[1, 2]", {"content-type": "application/json"}, None, "JSON object"),
        (b'{"model": "m"}', {}, "messages", "Missing required parameter: 'messages'"),
        (
            b'{"messages": [{"role": "user", "content": "x"}]}',
            {},
            "model",
            "Missing required parameter: 'model'",
        ),
        (b'{"model": "m", "messages": []}', {}, "messages", "at least 1"),
        (b'{"model": "m", "messages": [{"role": "wizard", "content": "x"}]}', {}, "messages[0]", "wizard"),
        (b'{"model": "m", "messages": [{"role": "user"}]}', {}, "messages[0].content", "Missing"),
        (
            b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": 3}',
            {},
            "temperature",
            "2",
        ),
        (
            b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "top_p": 0}',
            {},
            "top_p",
            "greater",
        ),
        (
            b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": 0}',
            {},
            "max_tokens",
            "1",
        ),
        (
            b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "presence_penalty": -9}',
            {},
            "presence_penalty",
            "-2",
        ),
        (b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 3}', {}, "n", "n > 1"),
        (
            b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function", '
            b'"function": {"name": "bad name!"}}]}',
            {},
            "tools[0].function.name",
            "pattern",
        ),
        (
            b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function", '
            b'"function": {"name": "f", "parameters": "nope"}}]}',
            {},
            "tools[0].function.parameters",
            "dictionary",
        ),
    ],
)
def test_bad_requests_are_openai_400s(
    fake: FakeServer,
    http: httpx.Client,
    body: bytes,
    headers: dict[str, str],
    param: str | None,
    fragment: str,
) -> None:
    response = http.post("/v1/chat/completions", content=body, headers=headers)
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert fragment.lower() in error["message"].lower()
    assert fake.servicer.requests == []  # refused before the service


def test_unknown_route_and_method_are_openai_shaped(http: httpx.Client) -> None:
    assert error_of(http.get("/v1/nope"))["code"] == "not_found"
    response = http.get("/v1/chat/completions")
    assert response.status_code == 405 and error_of(response)["code"] == "method_not_allowed"


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
    assert response.status_code == 400  # no Content-Length: refused while reading
    assert fake.servicer.requests == []
    assert httpx.post(gateway.url + "/v1/chat/completions", json=CHAT).status_code == 200
