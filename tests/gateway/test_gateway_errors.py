"""Every error path: gRPC status -> OpenAI error (pure and over HTTP), bad requests, in-stream errors."""

from __future__ import annotations

from typing import Any

import grpc
import httpx
import openai
import pytest
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from gptoss.errors import from_rpc_error

from gateway._errors import GatewayError, from_client_error
from tests.clients.fake_service import Fail, FakeServer, Reply, content
from tests.gateway.gateway_thread import GatewayThread

CHAT = {"model": "fake-model", "messages": [{"role": "user", "content": "hi"}]}


def from_grpc(error: grpc.aio.AioRpcError) -> GatewayError:
    """The gateway's mapping of the client's typed error for this gRPC failure."""
    return from_client_error(from_rpc_error(error))


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
        (b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 129}', {}, "n", "128"),
        (b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 0}', {}, "n", "1"),
        (
            b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "logprobs": true, "top_logprobs": 21}',
            {},
            "top_logprobs",
            "20",
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
