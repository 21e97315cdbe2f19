"""The batch-range warm-up (service/warmup.py): readiness stays NOT_SERVING until it has finished,
and it runs the full batch (max_num_seqs requests at once) with unaligned prompt lengths."""

from __future__ import annotations

import grpc
from gptoss.contract import READINESS_SERVICE
from grpc_health.v1 import health_pb2, health_pb2_grpc

from service.config import Settings
from service.warmup import UNIQUE_PROMPTS, warmup_waves
from tests.conftest import wait_until
from tests.support.scripted_engine import ScriptedEngine
from tests.support.server_thread import ServerThread


def test_readiness_stays_not_serving_until_the_warm_up_is_done() -> None:
    settings = Settings(profile="cpu-tiny", port=0, metrics_port=None, warmup=True, max_num_seqs=8)
    engine = ScriptedEngine([[1428]] * 40, step_delay=0.05)  # each warm-up request takes ~0.4 s

    async def factory(_settings: Settings) -> ScriptedEngine:
        return engine

    server = ServerThread(settings, factory).start(wait_ready=False)
    try:
        with grpc.insecure_channel(server.target) as channel:
            health = health_pb2_grpc.HealthStub(channel)

            def ready() -> int:
                request = health_pb2.HealthCheckRequest(service=READINESS_SERVICE)
                return int(health.Check(request, timeout=5).status)

            assert wait_until(lambda: len(engine.running) == 8)  # the whole batch at once
            assert ready() == health_pb2.HealthCheckResponse.NOT_SERVING
            assert wait_until(lambda: ready() == health_pb2.HealthCheckResponse.SERVING)
            # Then constrained requests, alone and as a full batch (the grammar path's kernel).
            assert engine.requests == 1 + 8 + UNIQUE_PROMPTS + 1 + 8 and not engine.running
            constrained = [options for options in engine.options if options.structural_tag]
            assert len(constrained) == 1 + 8 and not any(options.ignore_eos for options in constrained)
    finally:
        server.stop()


def test_warm_up_off_is_one_request() -> None:
    engine = ScriptedEngine([[1428]])

    async def factory(_settings: Settings) -> ScriptedEngine:
        return engine

    server = ServerThread(Settings(profile="cpu-tiny", port=0, metrics_port=None), factory).start()
    try:
        assert engine.requests == 1
    finally:
        server.stop()


def test_waves_cover_the_batch_with_odd_prompt_lengths() -> None:
    burst, unique = warmup_waves(Settings(profile="cpu-tiny", max_num_seqs=64))
    assert len(burst) == 64 and len({tuple(p) for p in burst}) == 1  # the first-burst shape: shared prefix
    assert len(burst[0]) % 2 == 1 and len(burst[0]) <= 4096 - 10
    assert len({tuple(p) for p in unique}) == len(unique) == UNIQUE_PROMPTS
    assert all(t < 199998 for p in burst + unique for t in p[1:])  # only text after <|start|>
