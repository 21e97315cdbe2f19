"""OpenTelemetry tracing, off by default: W3C `traceparent` from gRPC metadata, spans per stage.

With no exporter configured, the OpenTelemetry API is a no-op, so the hot path pays nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Literal

from opentelemetry import propagate, trace
from opentelemetry.context import Context

log = logging.getLogger(__name__)
TRACER_NAME = "gptoss.service"
Exporter = Literal["none", "console", "otlp"]


def configure_tracing(exporter: Exporter, service_name: str = "gptoss-service") -> None:
    """Install a tracer provider for `console` or `otlp` (endpoint from OTEL_EXPORTER_OTLP_* env)."""
    if exporter == "none":
        return
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

    span_exporter: SpanExporter
    if exporter == "console":
        span_exporter = ConsoleSpanExporter()
    else:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        span_exporter = OTLPSpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(BatchSpanProcessor(span_exporter))
    trace.set_tracer_provider(provider)
    log.info("tracing on: %s exporter", exporter)


def tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER_NAME)


def context_from_metadata(metadata: Iterable[tuple[str, Any]] | None) -> Context:
    """The caller's trace context (traceparent / tracestate metadata), or an empty one."""
    carrier = {name: value for name, value in metadata or () if isinstance(value, str)}
    return propagate.extract(carrier)


@contextmanager
def span(name: str, **attributes: Any) -> Iterator[trace.Span]:
    with tracer().start_as_current_span(name, attributes=attributes) as current:
        yield current
