"""The service's Prometheus endpoint after real traffic."""

from __future__ import annotations

import pytest
from gptoss.v1 import inference_pb2 as pb
from gptoss.v1 import inference_pb2_grpc

from tests.support.prometheus import Samples, scrape, total
from tests.support.server_thread import ServerThread


def scrape_service(server: ServerThread) -> Samples:
    assert server.service is not None and server.service.metrics_port
    return scrape(f"http://127.0.0.1:{server.service.metrics_port}/metrics")


@pytest.mark.engine
def test_metrics_follow_traffic(
    live_server: ServerThread, stub: inference_pb2_grpc.InferenceServiceStub
) -> None:
    before = scrape_service(live_server)
    request = pb.GenerateRequest(
        messages=[pb.Message(role=pb.ROLE_USER, content="hi")], max_tokens=8, ignore_eos=True
    )
    for _ in range(3):
        list(stub.Generate(request, timeout=60))
    after = scrape_service(live_server)
    ok = total(after, "gptoss_requests_total", method="Generate", code="OK")
    assert ok - total(before, "gptoss_requests_total", method="Generate", code="OK") == 3
    completion = total(after, "gptoss_tokens_total", kind="completion") - total(
        before, "gptoss_tokens_total", kind="completion"
    )
    assert completion == 24
    assert total(after, "gptoss_time_to_first_token_seconds_count") >= 3
    assert total(after, "gptoss_active_streams") == 0
    for name in ("gptoss_engine_requests_running", "gptoss_engine_kv_cache_usage_ratio", "gptoss_build_info"):
        assert name in after, name
    assert any(name.startswith("vllm:") for name in after), "vLLM's own metrics are exported too"
