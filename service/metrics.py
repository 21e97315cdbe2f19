"""Prometheus metrics for the service (`gptoss_` prefix), served on their own HTTP port.

vLLM's own `vllm:` metrics live in the same default registry, so they are exported too.
"""

from __future__ import annotations

from gptoss.v1 import inference_pb2 as pb
from prometheus_client import Counter, Gauge, Histogram, Info, start_http_server

from service.lifecycle import ServiceState

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_ITL_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)

REQUESTS = Counter("gptoss_requests", "Finished RPCs by method and gRPC status code.", ["method", "code"])
ACTIVE_STREAMS = Gauge("gptoss_active_streams", "Generate streams in flight.")
QUEUE_DEPTH = Gauge("gptoss_admission_queue_depth", "Generate requests waiting for a concurrency slot.")
QUEUE_WAIT = Histogram(
    "gptoss_queue_wait_seconds", "Engine queue wait per request.", buckets=_LATENCY_BUCKETS
)
TTFT = Histogram("gptoss_time_to_first_token_seconds", "Time to first token.", buckets=_LATENCY_BUCKETS)
ITL = Histogram(
    "gptoss_inter_token_latency_seconds", "Mean inter-token latency per request.", buckets=_ITL_BUCKETS
)
TOKENS = Counter("gptoss_tokens", "Tokens by kind: prompt, completion, reasoning, cached.", ["kind"])
FINISH = Counter("gptoss_finish_reasons", "Generate streams by finish reason.", ["reason"])
ENGINE_RUNNING = Gauge("gptoss_engine_requests_running", "Requests running in the engine (vLLM scheduler).")
ENGINE_WAITING = Gauge("gptoss_engine_requests_waiting", "Requests waiting in the engine (vLLM scheduler).")
ENGINE_KV_USAGE = Gauge("gptoss_engine_kv_cache_usage_ratio", "Fraction of the KV cache in use (0-1).")
BUILD = Info("gptoss_build", "Service build and engine information.")


def record_engine_stats(running: int, waiting: int, kv_cache_usage: float) -> None:
    """Called by the engine's stat logger on every scheduler step."""
    ENGINE_RUNNING.set(running)
    ENGINE_WAITING.set(waiting)
    ENGINE_KV_USAGE.set(kv_cache_usage)


def bind_state(state: ServiceState) -> None:
    ACTIVE_STREAMS.set_function(lambda: state.active_streams)
    QUEUE_DEPTH.set_function(lambda: state.queued)


def serve_metrics(host: str, port: int) -> int:
    """Start the Prometheus HTTP endpoint; returns the bound port."""
    server, _thread = start_http_server(port, addr=host)
    return int(server.server_port)


def observe_done(usage: pb.Usage, timings: pb.Timings, finish: pb.FinishReason, tokens: int) -> None:
    """One finished stream: its tokens, finish reason and latencies."""
    for kind in ("prompt_tokens", "completion_tokens", "reasoning_tokens", "cached_tokens"):
        TOKENS.labels(kind.removesuffix("_tokens")).inc(getattr(usage, kind))
    FINISH.labels(pb.FinishReason.Name(finish).removeprefix("FINISH_REASON_").lower()).inc()
    if timings.HasField("time_to_first_token"):
        TTFT.observe(timings.time_to_first_token.ToNanoseconds() / 1e9)
    if timings.HasField("queue_wait"):
        QUEUE_WAIT.observe(timings.queue_wait.ToNanoseconds() / 1e9)
    if timings.HasField("decode_time") and tokens > 1:
        ITL.observe(timings.decode_time.ToNanoseconds() / 1e9 / (tokens - 1))
