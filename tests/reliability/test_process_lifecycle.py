"""The production entry point, `python -m service`, as a real process on the real vLLM CPU engine:
SIGTERM drains (readiness NOT_SERVING at once, new requests UNAVAILABLE, streams in flight finish,
exit 0), and the death of vLLM's engine-core process ends every stream with UNAVAILABLE, turns both
health checks NOT_SERVING and exits non-zero so an orchestrator restarts the replica.

Each test starts its own server process (one at a time) and kills it, and every process it spawned,
whatever happens."""

from __future__ import annotations

import concurrent.futures
import contextlib
import threading
import time
from collections.abc import Iterator

import grpc
import psutil
import pytest
from gptoss.contract import READINESS_SERVICE
from gptoss.v1 import inference_pb2 as pb
from gptoss.v1 import inference_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.reliability.helpers import Tally, error_reason
from tests.support.service_process import ServiceProcess

pytestmark = pytest.mark.engine

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
STREAMS = 32
DRAIN_TOKENS = 96  # a few seconds for 32 streams on 2 cores: in flight at SIGTERM, done well within grace
CANARY_PROMPT = "canary-prompt-5d1f0b7e"


@pytest.fixture
def service_process() -> Iterator[ServiceProcess]:
    service = ServiceProcess("--drain-grace-seconds", "20")
    try:
        yield service.start()
    finally:
        service.stop()


class HealthWatch:
    """grpc.health.v1 Watch streams on liveness and readiness: every status the server pushes."""

    def __init__(self, target: str) -> None:
        self.seen: dict[str, list[int]] = {"": [], READINESS_SERVICE: []}
        self._channel = grpc.insecure_channel(target)
        self._calls = []
        self._threads = []
        for service in self.seen:
            call = health_pb2_grpc.HealthStub(self._channel).Watch(
                health_pb2.HealthCheckRequest(service=service), timeout=120
            )
            self._calls.append(call)
            thread = threading.Thread(target=self._read, args=(service, call), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _read(self, service: str, call: Iterator[health_pb2.HealthCheckResponse]) -> None:
        with contextlib.suppress(grpc.RpcError):
            for reply in call:
                self.seen[service].append(int(reply.status))

    def wait_for(self, service: str, status: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if status in self.seen[service]:
                return True
            time.sleep(0.01)
        return status in self.seen[service]

    def close(self) -> None:
        for call in self._calls:
            call.cancel()  # type: ignore[attr-defined]
        for thread in self._threads:
            thread.join(5)
        self._channel.close()


def _stream(
    stub: inference_pb2_grpc.InferenceServiceStub, max_tokens: int, first: threading.Barrier | None
) -> tuple[str, pb.Done | None, str]:
    """One raw-token stream: (code name, its Done or None, ErrorInfo reason)."""
    request = pb.GenerateRequest(
        prompt_token_ids=[200006, 1428, 200008, 40], max_tokens=max_tokens, ignore_eos=True
    )
    call = stub.Generate(request, timeout=120)
    responses = []
    try:
        for response in call:
            responses.append(response)
            if first is not None and len(responses) == 1:
                first.wait(60)
    except grpc.RpcError as error:
        return error.code().name, None, error_reason(error)  # type: ignore[attr-defined]
    done = responses[-1].done if responses[-1].HasField("done") else None
    return "OK", done, ""


def test_sigterm_drains_streams_in_flight_then_exits_0(service_process: ServiceProcess) -> None:
    service = service_process
    tally = Tally(f"drain: SIGTERM with {STREAMS} streams in flight (real process, vLLM engine)")
    # Started without --host: every socket the server and its vLLM children listen on is loopback.
    listening = {
        conn.laddr.ip
        for process in [psutil.Process(service.pid), *service.remember_descendants()]
        for conn in process.net_connections(kind="inet")
        if conn.status == psutil.CONN_LISTEN
    }
    assert listening and listening <= {"127.0.0.1", "::1", "::ffff:127.0.0.1"}, listening
    with grpc.insecure_channel(service.target) as channel:
        stub = inference_pb2_grpc.InferenceServiceStub(channel)
        # One chat request with a recognisable prompt, for the no-prompts-in-logs check below.
        chat = list(
            stub.Generate(
                pb.GenerateRequest(
                    messages=[pb.Message(role=pb.ROLE_USER, content=CANARY_PROMPT)], max_tokens=16
                ),
                timeout=60,
            )
        )
        assert chat[-1].HasField("done")
        output = "".join(r.content.text + r.reasoning.text for r in chat)

        all_started = threading.Barrier(STREAMS + 1)
        with concurrent.futures.ThreadPoolExecutor(STREAMS) as pool:
            futures = [pool.submit(_stream, stub, DRAIN_TOKENS, all_started) for _ in range(STREAMS)]
            all_started.wait(60)  # every stream has its first event: all 32 are in the engine
            health = HealthWatch(service.target)
            assert health.wait_for(READINESS_SERVICE, SERVING, 5)
            signalled = time.monotonic()
            service.terminate()
            assert health.wait_for(READINESS_SERVICE, NOT_SERVING, 2), health.seen
            readiness_after = time.monotonic() - signalled

            code, _, reason = _stream(stub, 4, None)  # a newcomer while draining
            tally.add(f"new request {code}")
            assert (code, reason) == ("UNAVAILABLE", "DRAINING")
            assert NOT_SERVING not in health.seen[""], "liveness must stay SERVING while draining"

            results = [future.result(timeout=60) for future in futures]
        drained = time.monotonic() - signalled
        health.close()
    for code, done, _ in results:
        complete = (
            done is not None
            and done.finish_reason == pb.FINISH_REASON_LENGTH
            and done.usage.completion_tokens == DRAIN_TOKENS
        )
        tally.add(f"in flight {code}" + ("" if complete else " incomplete"))
    exit_code = service.wait_exit(60)
    exited = time.monotonic() - signalled
    tally.report(
        readiness_not_serving_after_s=round(readiness_after, 2),
        streams_done_after_s=round(drained, 1),
        exit_code=exit_code,
        exited_after_s=round(exited, 1),
    )
    assert tally.counts["in flight OK"] == STREAMS, tally.counts
    assert exit_code == 0
    assert drained < 20  # within the grace period
    logs = service.log_text()
    assert "drain grace over" not in logs  # nobody was cut off
    # Prompts and outputs are not logged by default (log_prompts is off).
    assert CANARY_PROMPT not in logs
    assert "200006, 1428, 200008, 40" not in logs and "[200006,1428,200008,40]" not in logs  # nor token ids
    if len(output) >= 12:
        assert output not in logs


def test_engine_core_death_ends_streams_and_exits_nonzero(service_process: ServiceProcess) -> None:
    service = service_process
    tally = Tally("engine death: EngineCore SIGKILLed under 8 streams (real process)")
    tree = service.remember_descendants()
    engine_core = service.engine_core()
    with grpc.insecure_channel(service.target) as channel:
        stub = inference_pb2_grpc.InferenceServiceStub(channel)
        started = threading.Barrier(9)
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(_stream, stub, 3000, started) for _ in range(8)]
            started.wait(60)
            health = HealthWatch(service.target)
            assert health.wait_for("", SERVING, 5)
            killed = time.monotonic()
            engine_core.kill()
            results = [future.result(timeout=30) for future in futures]  # no hang
            ended = time.monotonic() - killed
            assert health.wait_for("", NOT_SERVING, 10), health.seen
            assert health.wait_for(READINESS_SERVICE, NOT_SERVING, 1), health.seen
            health.close()
        for code, _, reason in results:
            tally.add(f"in flight {code} {reason}".strip())
        code, _, reason = _stream(stub, 4, None)
        tally.add(f"new request {code}")
    exit_code = service.wait_exit(60)
    exited = time.monotonic() - killed
    tally.report(streams_ended_after_s=round(ended, 2), exit_code=exit_code, exited_after_s=round(exited, 1))
    assert tally.counts["in flight UNAVAILABLE ENGINE_DEAD"] == 8, tally.counts
    assert code == "UNAVAILABLE"  # ENGINE_DEAD, or connection refused once the server has stopped
    assert exit_code != 0
    # Nothing left behind for the orchestrator to trip over: the whole tree is gone.
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(p.is_running() for p in tree):
        time.sleep(0.2)
    leftovers = [p for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not leftovers, leftovers
