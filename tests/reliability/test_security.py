"""Security checks the other suites do not cover: prompts and outputs stay out of the logs by
default, both servers bind loopback unless told otherwise, and health + reflection stay reachable
without an API key while everything else needs one."""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterator

import grpc
import httpx
import psutil
import pytest
from gptoss.contract import READINESS_SERVICE
from gptoss.v1 import inference_pb2 as pb
from gptoss.v1 import inference_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from gateway import GatewaySettings
from service.config import Settings
from service.logs import JsonFormatter
from tests.reliability.helpers import Tally
from tests.support.gateway_process import GatewayProcess
from tests.support.gateway_thread import GatewayThread
from tests.support.scripted_engine import one_token_per_step
from tests.support.server_thread import ServerThread

ServerFactory = Callable[..., ServerThread]
CANARY_PROMPT = "canary-prompt-9b2e41c7"
CANARY_OUTPUT = "canary-output-3fa86d05"
CANARY_TOOL = "canary_tool_77d1"
LOOPBACK = {"127.0.0.1", "::1", "::ffff:127.0.0.1"}


class Capture(logging.Handler):
    """Every record of every logger, formatted as the service prints it (JSON, extras included)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def captured_logs() -> Iterator[Capture]:
    """Root at DEBUG, and propagation on for loggers that turn it off (vLLM, uvicorn), for the test."""
    handler = Capture()
    root = logging.getLogger()
    saved_level = root.level
    quiet = [
        logger
        for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger) and not logger.propagate
    ]
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    for logger in quiet:
        logger.propagate = True
    try:
        yield handler
    finally:
        for logger in quiet:
            logger.propagate = False
        root.removeHandler(handler)
        root.setLevel(saved_level)


def _script(prompt: list[int]) -> list[list[int]]:
    return one_token_per_step(
        f"<|channel|>analysis<|message|>{CANARY_OUTPUT} thinking<|end|><|start|>assistant<|channel|>final<|message|>{CANARY_OUTPUT}<|return|>"
    )


def _streamed_content(sse: str) -> str:
    chunks = [json.loads(line[6:]) for line in sse.splitlines() if line.startswith("data: {")]
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


def test_prompts_and_outputs_are_not_logged(
    scripted_server: ServerFactory, start_gateway: Callable[..., GatewayThread], captured_logs: Capture
) -> None:
    """Even at DEBUG, through gRPC and the gateway, on success and on refusal."""
    server = scripted_server(_script)
    assert server.settings.log_prompts is False  # the default
    gateway = start_gateway([server.target])
    tally = Tally("no prompts/outputs in logs (DEBUG, gRPC + gateway, success + errors)")
    user = pb.Message(role=pb.ROLE_USER, content=CANARY_PROMPT)
    with grpc.insecure_channel(server.target) as channel:
        stub = inference_pb2_grpc.InferenceServiceStub(channel)
        replies = list(stub.Generate(pb.GenerateRequest(messages=[user]), timeout=10))
        assert CANARY_OUTPUT in "".join(r.content.text for r in replies)  # it was really produced
        tally.add("grpc ok")
        for bad in (
            pb.GenerateRequest(messages=[user], tools=[pb.Tool(name=f"{CANARY_TOOL}!")]),
            pb.GenerateRequest(messages=[pb.Message(role=pb.ROLE_USER, content=CANARY_PROMPT * 3000)]),
        ):
            with pytest.raises(grpc.RpcError):
                list(stub.Generate(bad, timeout=10))
            tally.add("grpc refused")
        stub.CountTokens(pb.CountTokensRequest(messages=[user]), timeout=10)
        tally.add("grpc count tokens")
    body = {"model": server.settings.model_id, "messages": [{"role": "user", "content": CANARY_PROMPT}]}
    for stream in (False, True):
        response = httpx.post(
            gateway.url + "/v1/chat/completions", json={**body, "stream": stream}, timeout=10
        )
        assert response.status_code == 200
        assert CANARY_OUTPUT in (_streamed_content(response.text) if stream else response.text)
        tally.add("gateway ok")
    bad_body = {**body, "tools": [{"type": "function", "function": {"name": f"{CANARY_TOOL}!"}}]}
    assert httpx.post(gateway.url + "/v1/chat/completions", json=bad_body, timeout=10).status_code == 400
    tally.add("gateway refused")
    logs = "\n".join(captured_logs.lines)
    tally.report(log_records=len(captured_logs.lines))
    assert any('"request done"' in line for line in captured_logs.lines), "the capture saw nothing"
    for canary in (CANARY_PROMPT, CANARY_OUTPUT, CANARY_TOOL):
        assert canary not in logs, [line for line in captured_logs.lines if canary in line][:3]


def test_both_servers_default_to_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GPTOSS_HOST", "GPTOSS_GATEWAY_HOST", "GPTOSS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    assert Settings().host == "127.0.0.1"
    assert GatewaySettings().host == "127.0.0.1"
    assert all(backend.startswith("127.0.0.1:") for backend in GatewaySettings().backends)


def _listening(pid: int) -> set[str]:
    return {
        conn.laddr.ip
        for conn in psutil.Process(pid).net_connections(kind="inet")
        if conn.status == psutil.CONN_LISTEN
    }


def test_gateway_process_listens_on_loopback_only() -> None:
    """`python -m gateway` with no --host: every listening socket is loopback."""
    with GatewayProcess(["127.0.0.1:9"], "--log-level", "warning", port=0).start(ready_path=None) as gateway:
        deadline = time.monotonic() + 30
        addresses: set[str] = set()
        while not addresses and time.monotonic() < deadline and gateway.alive():
            time.sleep(0.2)
            with contextlib.suppress(psutil.Error):
                addresses = _listening(gateway.pid)
        assert addresses, "the gateway never listened"
        assert addresses <= LOOPBACK, addresses


def _reflection_services(channel: grpc.Channel) -> set[str]:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    replies = stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
    )
    return {service.name for reply in replies for service in reply.list_services_response.service}


def test_health_and_reflection_need_no_key_but_inference_does(scripted_server: ServerFactory) -> None:
    server = scripted_server(one_token_per_step("<|channel|>final<|message|>ok<|return|>"), api_keys=["k-1"])
    tally = Tally("API keys: open probes and discovery, guarded inference")
    with grpc.insecure_channel(server.target) as channel:
        # Discovery without a key: list services, then describe one (what grpcurl / buf curl do).
        assert {READINESS_SERVICE, "grpc.health.v1.Health"} <= _reflection_services(channel)
        tally.add("reflection list OK")
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(file_containing_symbol=READINESS_SERVICE)
        replies = list(stub.ServerReflectionInfo(iter([request]), timeout=5))
        assert replies[0].file_descriptor_response.file_descriptor_proto, replies[0]
        tally.add("reflection describe OK")
        # Probes without a key: Check and Watch, liveness and readiness.
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", READINESS_SERVICE):
            reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
            watch = health.Watch(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
            watch.cancel()
            tally.add("health OK")
        # Everything of gptoss.v1 needs the key.
        inference = inference_pb2_grpc.InferenceServiceStub(channel)
        user = [pb.Message(role=pb.ROLE_USER, content="hi")]
        calls: list[Callable[..., object]] = [
            lambda **kw: list(inference.Generate(pb.GenerateRequest(messages=user), timeout=5, **kw)),
            lambda **kw: inference.CountTokens(pb.CountTokensRequest(messages=user), timeout=5, **kw),
            lambda **kw: inference.GetModelInfo(pb.GetModelInfoRequest(), timeout=5, **kw),
        ]
        for call in calls:
            with pytest.raises(grpc.RpcError) as raised:
                call()
            assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
            tally.add("no key UNAUTHENTICATED")
            call(metadata=(("authorization", "Bearer k-1"),))
            tally.add("key OK")
    tally.report()
    assert tally.counts["no key UNAUTHENTICATED"] == 3 and tally.counts["key OK"] == 3
