"""Prometheus metrics of one gateway app, in its own registry so several apps (tests) never collide."""

from __future__ import annotations

from gptoss import Usage
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


class Metrics:
    """Request, latency, token and error counters labelled by route (never by model or caller: cardinality)."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "gptoss_gateway_requests",
            "HTTP requests answered, by route and status.",
            ["route", "status"],
            registry=r,
        )
        self.in_flight = Gauge(
            "gptoss_gateway_requests_in_flight", "Requests being served.", ["route"], registry=r
        )
        self.duration = Histogram(
            "gptoss_gateway_request_duration_seconds",
            "Time from request to last byte, by route.",
            ["route", "stream"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "gptoss_gateway_time_to_first_event_seconds",
            "Time from request to the first generated event (streaming requests).",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "gptoss_gateway_tokens", "Tokens reported by the service, by kind.", ["kind"], registry=r
        )
        self.backend_errors = Counter(
            "gptoss_gateway_backend_errors",
            "Failed gRPC calls to the service, by gRPC code.",
            ["code"],
            registry=r,
        )
        self.disconnects = Counter(
            "gptoss_gateway_client_disconnects",
            "Streams cancelled because the client went away.",
            ["route"],
            registry=r,
        )
        self.stream_errors = Counter(
            "gptoss_gateway_stream_errors",
            "Streams that ended with an in-band error event.",
            ["route"],
            registry=r,
        )

    def count_usage(self, usage: Usage) -> None:
        self.tokens.labels("prompt").inc(usage.prompt_tokens)
        self.tokens.labels("completion").inc(usage.completion_tokens)
        self.tokens.labels("reasoning").inc(usage.reasoning_tokens)
        self.tokens.labels("cached").inc(usage.cached_tokens)

    def render(self) -> bytes:
        return generate_latest(self.registry)
