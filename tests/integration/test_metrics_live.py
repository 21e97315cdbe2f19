"""The service's Prometheus endpoint after real traffic."""

from __future__ import annotations

import urllib.request

import pytest
from gptoss.v1 import inference_pb2 as pb
from gptoss.v1 import inference_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from tests.support.server_thread import ServerThread


def scrape(server: ServerThread) -> dict[str, list[tuple[dict[str, str], float]]]:
    assert server.service is not None and server.service.metrics_port
    url = f"http://127.0.0.1:{server.service.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def value(samples: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str) -> float:
    return sum(v for got, v in samples.get(name, []) if all(got.get(k) == want for k, want in labels.items()))


@pytest.mark.engine
def test_metrics_follow_traffic(
    live_server: ServerThread, stub: inference_pb2_grpc.InferenceServiceStub
) -> None:
    before = scrape(live_server)
    request = pb.GenerateRequest(
        messages=[pb.Message(role=pb.ROLE_USER, content="hi")], max_tokens=8, ignore_eos=True
    )
    for _ in range(3):
        list(stub.Generate(request, timeout=60))
    after = scrape(live_server)
    ok = value(after, "gptoss_requests_total", method="Generate", code="OK")
    assert ok - value(before, "gptoss_requests_total", method="Generate", code="OK") == 3
    completion = value(after, "gptoss_tokens_total", kind="completion") - value(
        before, "gptoss_tokens_total", kind="completion"
    )
    assert completion == 24
    assert value(after, "gptoss_time_to_first_token_seconds_count") >= 3
    assert value(after, "gptoss_active_streams") == 0
    for name in ("gptoss_engine_requests_running", "gptoss_engine_kv_cache_usage_ratio", "gptoss_build_info"):
        assert name in after, name
    assert any(name.startswith("vllm:") for name in after), "vLLM's own metrics are exported too"
