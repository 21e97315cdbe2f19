"""Issue 17's service defects, each through the real gRPC server (scripted engine): request ids,
malformed protobuf, ignore_eos rights, stop strings on token-id requests, default max_tokens,
caller identity, metrics bind address."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from gptoss.contract import CALLER_METADATA, REQUEST_ID_METADATA
from gptoss.v1 import inference_pb2 as pb

from service import decode_guard
from service.config import Settings
from service.server import GrpcService
from tests.conftest import wait_until
from tests.integration.test_generate_live import assert_well_formed, error_info
from tests.support.scripted_engine import USER, one_token_per_step, streaming_text, stub_for, toks
from tests.support.server_thread import ServerThread

ServerFactory = Callable[..., ServerThread]
FINAL_OK = "<|channel|>final<|message|>ok<|return|>"


def _refused(call: Callable[[], Any]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as raised:
        call()
    return raised.value


@pytest.mark.parametrize(
    "request_id",
    ["x" * 129, "line\r\nInjected: header", "nul\x00byte", "caf\u00e9", "tab\tchar"],
    ids=["too-long", "crlf", "nul", "non-ascii", "tab"],
)
def test_a_bad_request_id_is_invalid_argument(scripted_server: ServerFactory, request_id: str) -> None:
    server = scripted_server(one_token_per_step(FINAL_OK))
    channel, stub = stub_for(server)
    with channel:
        request = pb.GenerateRequest(messages=USER, request_id=request_id)
        error = _refused(lambda: list(stub.Generate(request, timeout=10)))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
        assert error_info(error).metadata["param"] == "request_id"
        # 128 printable characters are fine, and are the id everywhere.
        fine = "r" * 127 + "~"
        done = assert_well_formed(list(stub.Generate(pb.GenerateRequest(messages=USER, request_id=fine))))
        assert done.request_id == fine
    assert server.engine.running == set()  # type: ignore[attr-defined]


def test_a_bad_x_request_id_is_invalid_argument_naming_it(scripted_server: ServerFactory) -> None:
    server = scripted_server(one_token_per_step(FINAL_OK))
    channel, stub = stub_for(server)
    with channel:
        metadata = ((REQUEST_ID_METADATA, "m" * 200),)
        error = _refused(lambda: list(stub.Generate(pb.GenerateRequest(messages=USER), metadata=metadata)))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
        assert error_info(error).metadata["param"] == REQUEST_ID_METADATA


def test_malformed_protobuf_is_invalid_argument_with_one_rate_limited_warning(
    scripted_server: ServerFactory, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = scripted_server(one_token_per_step(FINAL_OK))
    monkeypatch.setattr(decode_guard, "_MALFORMED", decode_guard.RateLimitedLog(decode_guard.log, 60.0))
    garbage = b"\x0a\xff\xff\xff\xff\x0f"  # field 1 (messages), a length far past the end
    with grpc.insecure_channel(server.target) as channel, caplog.at_level(logging.INFO):
        for method in ("/gptoss.v1.InferenceService/Generate", "/gptoss.v1.InferenceService/CountTokens"):
            for _ in range(5):
                if method.endswith("Generate"):
                    call = channel.unary_stream(method)
                    error = _refused(lambda call=call: list(call(garbage, timeout=10)))  # type: ignore[misc]
                else:
                    unary = channel.unary_unary(method)
                    error = _refused(lambda unary=unary: unary(garbage, timeout=10))  # type: ignore[misc]
                assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error  # type: ignore[attr-defined]
                assert "Error" not in (error.details() or "") and "class" not in (error.details() or "")  # type: ignore[attr-defined]
                assert error_info(error).reason == "INVALID_REQUEST"
        # The connection and the server are fine afterwards.
        stub = stub_for(server)[1]
        assert_well_formed(list(pb_generate(stub)))
    warnings = [r for r in caplog.records if "malformed request" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING and not warnings[0].exc_info
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def pb_generate(stub: Any) -> Any:
    return stub.Generate(pb.GenerateRequest(messages=USER), timeout=10)


def test_rate_limited_log_counts_what_it_left_out(caplog: pytest.LogCaptureFixture) -> None:
    limited = decode_guard.RateLimitedLog(logging.getLogger("test.ratelimit"), every_s=0.0)
    quiet = decode_guard.RateLimitedLog(logging.getLogger("test.ratelimit"), every_s=3600.0)
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            quiet.warning("flood")
        limited.warning("a")
        limited.warning("b")
    assert [r.getMessage() for r in caplog.records] == ["flood", "a", "b"] and quiet.suppressed == 2


def test_ignore_eos_only_for_allowed_callers(scripted_server: ServerFactory) -> None:
    request = pb.GenerateRequest(messages=USER, max_tokens=4, ignore_eos=True)
    denied = scripted_server(streaming_text(8), ignore_eos_callers=[])
    channel, stub = stub_for(denied)
    with channel:
        error = _refused(lambda: list(stub.Generate(request, timeout=10)))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
        assert error_info(error).metadata["param"] == "ignore_eos"
    key = "sk-bench"
    allowed = scripted_server(
        streaming_text(8), api_keys=[key, "sk-other"], ignore_eos_callers=[_identity(key)]
    )
    channel, stub = stub_for(allowed)
    with channel:
        done = assert_well_formed(list(stub.Generate(request, metadata=_bearer(key), timeout=10)))
        assert done.usage.completion_tokens == 4
        error = _refused(lambda: list(stub.Generate(request, metadata=_bearer("sk-other"), timeout=10)))
        assert error_info(error).metadata["param"] == "ignore_eos"


def test_ignore_eos_default_allows_cpu_profiles_only() -> None:
    from service.planner import RequestPlanner
    from service.prompt_renderer import PromptRenderer

    def allowed(**settings: Any) -> bool:
        return RequestPlanner(Settings(**settings), PromptRenderer(0)).ignore_eos_allowed("anyone")

    assert allowed(profile="cpu-tiny")
    assert not allowed(profile="gpt-oss-20b")
    assert allowed(profile="gpt-oss-20b", ignore_eos_callers="*")


def test_stop_strings_apply_to_token_id_requests(scripted_server: ServerFactory) -> None:
    text = "alpha beta STOP gamma delta"
    server = scripted_server(one_token_per_step(text))
    channel, stub = stub_for(server)
    request = pb.GenerateRequest(prompt_token_ids=toks("<|start|>user"), stop=["STOP"], max_tokens=50)
    with channel:
        responses = list(stub.Generate(request, timeout=10))
    done = assert_well_formed(responses)
    emitted = [t for r in responses if r.HasField("token_ids") for t in r.token_ids.token_ids]
    decoded = bytes(b for t in emitted for b in _token_bytes(t)).decode()
    assert decoded == "alpha beta", decoded  # the token where STOP begins (" STOP") and later: not sent
    assert done.finish_reason == pb.FINISH_REASON_STOP
    assert wait_until(lambda: server.engine.running == set())  # type: ignore[attr-defined]


def _token_bytes(token: int) -> bytes:
    from service.harmony.tokens import token_bytes

    return token_bytes(token)


def test_default_max_tokens_caps_requests_that_set_none(scripted_server: ServerFactory) -> None:
    server = scripted_server(streaming_text(50), default_max_tokens=5)
    channel, stub = stub_for(server)
    with channel:
        done = assert_well_formed(list(stub.Generate(pb.GenerateRequest(messages=USER), timeout=10)))
        assert done.usage.completion_tokens == 5 and done.finish_reason == pb.FINISH_REASON_LENGTH
        explicit = pb.GenerateRequest(messages=USER, max_tokens=9)
        assert assert_well_formed(list(stub.Generate(explicit, timeout=10))).usage.completion_tokens == 9


def _identity(key: str) -> str:
    from service.auth import key_identity

    return key_identity(key)


def _bearer(key: str, scheme: str = "Bearer") -> tuple[tuple[str, str], ...]:
    return (("authorization", f"{scheme} {key}"),)


def test_the_caller_name_is_trusted_only_from_gateway_keys(
    scripted_server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    server = scripted_server(
        one_token_per_step(FINAL_OK), api_keys=["sk-user"], trusted_gateway_keys=["sk-gateway"]
    )
    channel, stub = stub_for(server)
    cases = [
        ("sk-user", _identity("sk-user")),  # a user key cannot name itself someone else
        ("sk-gateway", "key-enduser"),  # a gateway key can
    ]
    with channel, caplog.at_level(logging.INFO):
        for key, expected in cases:
            caplog.clear()
            metadata = (*_bearer(key, "bearer"), (CALLER_METADATA, "key-enduser"))  # scheme: any case
            assert_well_formed(list(stub.Generate(pb.GenerateRequest(messages=USER), metadata=metadata)))
            assert wait_until(lambda: any(r.getMessage() == "request done" for r in caplog.records))
            done = next(r for r in caplog.records if r.getMessage() == "request done")
            assert done.__dict__["caller"] == expected


def test_metrics_bind_loopback_unless_told(monkeypatch: pytest.MonkeyPatch) -> None:
    bound: list[str] = []
    monkeypatch.setattr("service.metrics.serve_metrics", lambda host, port: bound.append(host) or 1)

    async def start(**settings: Any) -> None:
        service = GrpcService(Settings(profile="cpu-tiny", port=0, **settings), _never_starts)
        await service.start()
        await service.drain_and_stop(0)

    asyncio.run(start(host="0.0.0.0", metrics_port=0))
    asyncio.run(start(host="0.0.0.0", metrics_port=0, metrics_host="0.0.0.0"))
    assert bound == ["127.0.0.1", "0.0.0.0"]


async def _never_starts(_settings: Settings) -> Any:
    await asyncio.sleep(3600)  # cancelled by drain_and_stop: this test needs no engine


def test_a_malformed_body_without_a_key_is_unauthenticated(scripted_server: ServerFactory) -> None:
    """Keys are checked before the body is parsed: no parse work (or warning) for strangers."""
    server = scripted_server(one_token_per_step(FINAL_OK), api_keys=["k1"])
    with grpc.insecure_channel(server.target) as channel:
        call = channel.unary_stream("/gptoss.v1.InferenceService/Generate")
        error = _refused(lambda: list(call(b"\x0a\xff\xff\xff\xff\x0f", timeout=10)))
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
        error = _refused(lambda: list(call(b"\x0a\xff\xff\xff\xff\x0f", metadata=_bearer("k1"), timeout=10)))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
