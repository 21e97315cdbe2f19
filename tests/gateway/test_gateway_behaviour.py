"""Gateway behaviour against the fake service: metadata, auth, cancellation, retries, ops endpoints."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import grpc
import httpx
import openai
import pytest
from gptoss.balancing import channel_target

from gateway._auth import ApiKeys, key_identity
from tests.clients.fake_service import Fail, FakeServer, Reply, content, done
from tests.support.gateway_process import GatewayProcess
from tests.support.gateway_thread import GatewayThread

CHAT = {"model": "fake-model", "messages": [{"role": "user", "content": "hi"}]}
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_request_id_and_trace_context_are_forwarded(fake: FakeServer, http: httpx.Client) -> None:
    response = http.post(
        "/v1/chat/completions", json=CHAT, headers={"x-request-id": "abc-123", "traceparent": TRACEPARENT}
    )
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "abc-123"
    metadata = fake.servicer.metadata[-1]
    assert metadata["x-request-id"] == "abc-123" and metadata["traceparent"] == TRACEPARENT
    assert fake.servicer.requests[-1].request_id == "abc-123"
    assert "authorization" not in metadata and "x-gptoss-caller" not in metadata


def test_bad_request_id_and_traceparent_are_replaced_or_dropped(fake: FakeServer, http: httpx.Client) -> None:
    response = http.post(
        "/v1/chat/completions",
        json=CHAT,
        headers={"x-request-id": "no spaces allowed", "traceparent": "junk"},
    )
    generated = response.headers["x-request-id"]
    assert generated != "no spaces allowed" and len(generated) == 32
    assert fake.servicer.metadata[-1]["x-request-id"] == generated
    assert "traceparent" not in fake.servicer.metadata[-1]


def test_api_keys(fake: FakeServer, start_gateway: Any, tmp_path: Any) -> None:
    key_file = tmp_path / "keys"
    key_file.write_text("# team keys\nsk-from-file\n\n")
    gateway = start_gateway(
        [fake.target], api_keys=["sk-one"], api_key_file=key_file, backend_api_key="svc-key"
    )
    url = gateway.url + "/v1/chat/completions"
    for headers in (
        {},
        {"authorization": "Bearer sk-wrong"},
        {"authorization": "Basic sk-one"},
        {"authorization": "Bearer"},
    ):
        response = httpx.post(url, json=CHAT, headers=headers)
        assert response.status_code == 401, headers
        assert response.json()["error"]["code"] == "invalid_api_key"
    assert httpx.get(gateway.url + "/v1/models").status_code == 401
    assert fake.servicer.requests == []
    for key in ("sk-one", "sk-from-file"):
        sdk = openai.OpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0)
        assert sdk.chat.completions.create(
            model="fake-model", messages=[{"role": "user", "content": "x"}]
        ).choices
        metadata = fake.servicer.metadata[-1]
        assert metadata["x-gptoss-caller"] == key_identity(key)
        assert metadata["authorization"] == "Bearer svc-key"  # the gateway's own key, never the caller's
        assert key not in str(metadata)
    # ops endpoints stay open for probes
    assert httpx.get(gateway.url + "/health").status_code == 200
    assert httpx.get(gateway.url + "/metrics").status_code == 200


def test_api_keys_unit() -> None:
    keys = ApiKeys(["a", "bb"])
    assert keys.authenticate("Bearer bb") == key_identity("bb")
    assert keys.authenticate("bearer a") == key_identity("a")
    assert ApiKeys([]).authenticate(None) is None
    with pytest.raises(Exception, match="Incorrect"):
        keys.authenticate("Bearer b")


def test_channel_targets() -> None:
    assert channel_target(["localhost:50051"]) == "localhost:50051"
    assert channel_target(["127.0.0.1:1", "localhost:2"]) == "ipv4:127.0.0.1:1,127.0.0.1:2"
    assert channel_target(["[::1]:1", "::1:2"]) == "ipv6:[::1]:1,[::1]:2"
    with pytest.raises(ValueError):
        channel_target(["127.0.0.1:1", "nope"])


def test_unavailable_before_any_event_is_retried(fake: FakeServer, fake_client: openai.OpenAI) -> None:
    fake.servicer.generate_script = [
        Fail(grpc.StatusCode.UNAVAILABLE, "draining", "DRAINING"),
        Reply([content("second try"), done()]),
    ]
    answer = fake_client.chat.completions.create(
        model="fake-model", messages=[{"role": "user", "content": "x"}]
    )
    assert answer.choices[0].message.content == "second try"
    assert len(fake.servicer.requests) == 2


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/responses"])
def test_client_disconnect_mid_stream_cancels_the_call(
    fake: FakeServer, fake_gateway: GatewayThread, path: str
) -> None:
    fake.servicer.generate_script = [Reply([content("first")], hang=True)]
    body = (
        {**CHAT, "stream": True}
        if path.endswith("completions")
        else {"model": "fake-model", "input": "x", "stream": True}
    )
    with httpx.Client(base_url=fake_gateway.url) as http, http.stream("POST", path, json=body) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if "first" in line:
                break
    assert fake.servicer.cancelled.wait(5), "the gRPC call was not cancelled"
    metrics = httpx.get(fake_gateway.url + "/metrics").text
    assert f'gptoss_gateway_client_disconnects_total{{route="{path}"}} 1.0' in metrics


def test_client_disconnect_while_waiting_for_a_whole_answer_cancels(
    fake: FakeServer, fake_gateway: GatewayThread
) -> None:
    fake.servicer.generate_script = [Reply([content("first")], hang=True)]
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(fake_gateway.url + "/v1/chat/completions", json=CHAT, timeout=1.0)
    assert fake.servicer.cancelled.wait(5), "the gRPC call was not cancelled"
    metrics = httpx.get(fake_gateway.url + "/metrics").text
    assert 'gptoss_gateway_client_disconnects_total{route="/v1/chat/completions"} 1.0' in metrics


async def test_async_sdk_stream_cancel(fake: FakeServer, fake_gateway: GatewayThread) -> None:
    fake.servicer.generate_script = [Reply([content("a"), content("b")], hang=True)]
    client = openai.AsyncOpenAI(base_url=fake_gateway.url + "/v1", api_key="x", max_retries=0)
    stream = await client.chat.completions.create(
        model="fake-model", messages=[{"role": "user", "content": "x"}], stream=True
    )
    got = []
    async for chunk in stream:
        got.append(chunk.choices[0].delta.content)
        if "b" in got:
            break
    await stream.close()
    await client.close()
    assert got == ["", "a", "b"]
    assert await asyncio.to_thread(fake.servicer.cancelled.wait, 5)


def test_keepalive_comments_while_the_model_is_silent(fake: FakeServer, start_gateway: Any) -> None:
    fake.servicer.generate_script = [Reply([content("a"), content("b"), done()], delay_s=0.3)]
    gateway = start_gateway([fake.target], sse_keepalive=0.1)
    response = httpx.post(gateway.url + "/v1/chat/completions", json={**CHAT, "stream": True}, timeout=10)
    assert ": keep-alive" in response.text
    assert response.text.rstrip().endswith("data: [DONE]")


def test_ready_follows_backend_health(fake: FakeServer, http: httpx.Client) -> None:
    assert http.get("/ready").json() == {"status": "ready"}
    fake.set_readiness(False)
    deadline = time.monotonic() + 5
    while http.get("/ready").status_code != 503:
        assert time.monotonic() < deadline, "/ready never went 503"
        time.sleep(0.05)
    assert http.get("/health").status_code == 200


def test_models(fake: FakeServer, fake_client: openai.OpenAI, http: httpx.Client) -> None:
    models = fake_client.models.list()
    assert [m.id for m in models.data] == ["fake-model"]
    assert fake_client.models.retrieve("fake-model").id == "fake-model"
    with pytest.raises(openai.NotFoundError):
        fake_client.models.retrieve("gpt-4")
    assert http.get("/v1/models/org/with-slash").status_code == 404
    calls = fake.servicer.unary_calls
    fake_client.models.list()
    assert fake.servicer.unary_calls == calls  # cached


def test_metrics(fake: FakeServer, http: httpx.Client, fake_client: openai.OpenAI) -> None:
    fake_client.chat.completions.create(model="fake-model", messages=[{"role": "user", "content": "x"}])
    http.post("/v1/chat/completions", content=b"{")
    fake.servicer.generate_script = [Fail(grpc.StatusCode.RESOURCE_EXHAUSTED, "busy", "OVERLOADED")]
    http.post("/v1/chat/completions", json=CHAT)
    text = http.get("/metrics").text
    assert 'gptoss_gateway_requests_total{route="/v1/chat/completions",status="200"} 1.0' in text
    assert 'gptoss_gateway_requests_total{route="/v1/chat/completions",status="400"} 1.0' in text
    assert 'gptoss_gateway_requests_total{route="/v1/chat/completions",status="429"} 1.0' in text
    assert 'gptoss_gateway_backend_errors_total{code="RESOURCE_EXHAUSTED"} 1.0' in text
    assert 'gptoss_gateway_tokens_total{kind="prompt"} 11.0' in text
    assert "gptoss_gateway_request_duration_seconds_bucket" in text


def test_settings_from_env_and_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway._settings import GatewaySettings, parse_args

    monkeypatch.setenv("GPTOSS_GATEWAY_BACKENDS", "127.0.0.1:1, 127.0.0.1:2")
    monkeypatch.setenv("GPTOSS_GATEWAY_API_KEYS", "k1,k2")
    monkeypatch.setenv("GPTOSS_GATEWAY_PORT", "9001")
    from_env = GatewaySettings()
    assert from_env.backends == ["127.0.0.1:1", "127.0.0.1:2"]
    assert from_env.all_api_keys() == ["k1", "k2"] and from_env.port == 9001
    flags = parse_args(
        ["--backend", "10.0.0.1:5", "--backend", "10.0.0.2:5", "--api-key", "k3", "--request-timeout", "9"]
    )
    assert flags.backends == ["10.0.0.1:5", "10.0.0.2:5"] and flags.all_api_keys() == ["k3"]
    assert flags.request_timeout == 9 and flags.port == 9001  # flags override env, env fills the rest
    assert "k3" not in repr(flags)  # keys are secrets
    with pytest.raises(ValueError):
        channel_target(["dns:///a:1", "127.0.0.1:2"])


def test_python_m_gateway_drains_in_flight_streams_on_sigterm(fake: FakeServer) -> None:
    import signal
    import threading

    fake.servicer.generate_script = [Reply([content("a"), content("b"), done()], delay_s=0.4)]
    with GatewayProcess([fake.target], "--log-level", "warning").start(timeout=20) as gateway:
        result: dict[str, httpx.Response] = {}
        worker = threading.Thread(
            target=lambda: result.update(
                r=httpx.post(gateway.url + "/v1/chat/completions", json={**CHAT, "stream": True}, timeout=10)
            )
        )
        worker.start()
        time.sleep(0.3)  # the stream is in flight
        assert gateway.proc is not None
        gateway.proc.send_signal(signal.SIGTERM)
        worker.join(10)
        assert result["r"].status_code == 200 and result["r"].text.rstrip().endswith("data: [DONE]")
        assert gateway.proc.wait(10) in (0, -signal.SIGTERM)
        with pytest.raises(httpx.TransportError):
            httpx.get(gateway.url + "/health")


def test_round_robin_skips_a_replica_that_is_not_ready(start_gateway: Any) -> None:
    with FakeServer() as a, FakeServer() as b:
        gateway = start_gateway([a.target, b.target])
        client = openai.OpenAI(base_url=gateway.url + "/v1", api_key="x", max_retries=0)
        for _ in range(20):  # until both subchannels are connected, the ready one takes everything
            client.chat.completions.create(model="fake-model", messages=[{"role": "user", "content": "x"}])
            if a.servicer.requests and b.servicer.requests:
                break
        assert a.servicer.requests and b.servicer.requests
        a.set_readiness(False)  # draining or starting: client-side health checking takes it out
        time.sleep(0.5)
        before_a, before_b = len(a.servicer.requests), len(b.servicer.requests)
        for _ in range(6):
            client.chat.completions.create(model="fake-model", messages=[{"role": "user", "content": "x"}])
        assert len(a.servicer.requests) == before_a and len(b.servicer.requests) == before_b + 6
