"""traceparent from gRPC metadata becomes the parent of the service's spans."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import grpc
import pytest
from gptoss.contract import REQUEST_ID_METADATA
from gptoss.v1 import inference_pb2 as pb
from gptoss.v1 import inference_pb2_grpc
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.conftest import wait_until
from tests.support.server_thread import ServerThread

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


@pytest.fixture(scope="module")
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)  # once per process: OpenTelemetry ignores later calls
    yield exporter


def test_spans_join_the_callers_trace(
    spans: InMemorySpanExporter, scripted_server: Callable[..., ServerThread]
) -> None:
    server = scripted_server([[200005], [17196], [200008], [24912], [200002]])
    metadata = (("traceparent", f"00-{TRACE_ID}-{PARENT_ID}-01"), (REQUEST_ID_METADATA, "trace-me"))
    with grpc.insecure_channel(server.target) as channel:
        stub = inference_pb2_grpc.InferenceServiceStub(channel)
        request = pb.GenerateRequest(messages=[pb.Message(role=pb.ROLE_USER, content="hi")])
        call = stub.Generate(request, timeout=10, metadata=metadata)
        responses = list(call)
        assert dict(call.initial_metadata())[REQUEST_ID_METADATA] == "trace-me"  # type: ignore[attr-defined]
    assert responses[-1].done.request_id == "trace-me"
    names = {"gptoss.v1.InferenceService/Generate", "harmony.render", "engine.generate", "harmony.parse"}
    assert wait_until(lambda: names <= {s.name for s in spans.get_finished_spans()})
    by_name = {s.name: s for s in spans.get_finished_spans() if s.context.trace_id == int(TRACE_ID, 16)}
    assert names <= set(by_name)
    root = by_name["gptoss.v1.InferenceService/Generate"]
    assert root.parent is not None and root.parent.span_id == int(PARENT_ID, 16)
    assert root.attributes is not None and root.attributes["gptoss.request_id"] == "trace-me"
    for child in names - {root.name}:
        assert by_name[child].parent is not None and by_name[child].parent.span_id == root.context.span_id
