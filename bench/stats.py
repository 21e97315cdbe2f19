"""Per-request measurements and their summary for one load point (pure: no I/O)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

# A stream shows per-token output when its output events (at least two) are spread over at least
# this share of the request, not flushed together at its end. Chat streams on random weights are
# flushed: the Harmony header never closes, so both our parser and vLLM's hold every token back
# until the end (TTFT/ITL are then not observable). A long TTFT stays visible (a stalled burst).
MIN_DECODE_SPREAD = 0.2


@dataclass
class RequestResult:
    """One request as the client saw it; times are CLOCK_MONOTONIC seconds (same in every process)."""

    ok: bool
    start: float
    end: float
    ttft: float | None = None  # seconds from send to the first output event
    output_tokens: int = 0
    prompt_tokens: int = 0
    events: int = 0  # output events (messages / SSE chunks / engine steps) that carried tokens
    itl: list[float] = field(default_factory=list)  # per-token gaps after the first event, seconds
    error: str = ""


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(pos), math.ceil(pos)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def _ms(value: float) -> float | None:
    return None if math.isnan(value) else round(value * 1000.0, 2)


def summarize(results: Sequence[RequestResult], expected_tokens: int = 0) -> dict[str, Any]:
    """Aggregate output tok/s over the point's wall time, and latency percentiles over requests.

    `short_requests` counts requests that generated fewer than `expected_tokens` (a stop token
    where EOS could not be ignored, e.g. through the gateway)."""
    done = [r for r in results if r.ok]
    errors = sorted({r.error for r in results if not r.ok})
    summary: dict[str, Any] = {
        "requests": len(results),
        "ok": len(done),
        "errors": errors[:5],
    }
    if not done:
        return summary | {"wall_s": None, "output_tok_s": 0.0}
    wall = max(r.end for r in results) - min(r.start for r in results)
    tokens = sum(r.output_tokens for r in done)
    per_token = statistics.median(r.events / max(r.output_tokens, 1) for r in done)
    spread = statistics.median(sum(r.itl) / (r.end - r.start) if r.end > r.start else 0.0 for r in done)
    visible = statistics.median(r.events for r in done) >= 2 and spread >= MIN_DECODE_SPREAD
    ttfts = [r.ttft for r in done if r.ttft is not None] if visible else []
    itl = [gap for r in done for gap in r.itl] if visible else []
    e2e = [r.end - r.start for r in done]
    tpot = [
        (r.end - r.start - r.ttft) / (r.output_tokens - 1)
        for r in done
        if visible and r.ttft is not None and r.output_tokens > 1
    ]
    return summary | {
        "wall_s": round(wall, 3),
        "output_tok_s": round(tokens / wall, 1) if wall > 0 else 0.0,
        "ttft_p50_ms": _ms(percentile(ttfts, 50)),
        "ttft_p99_ms": _ms(percentile(ttfts, 99)),
        "itl_p50_ms": _ms(percentile(itl, 50)),
        "itl_p99_ms": _ms(percentile(itl, 99)),
        "e2e_p50_ms": _ms(percentile(e2e, 50)),
        "e2e_p99_ms": _ms(percentile(e2e, 99)),
        "tpot_mean_ms": _ms(statistics.fmean(tpot)) if tpot else None,
        "prompt_tokens": int(statistics.median(r.prompt_tokens for r in done)),
        "output_tokens": int(statistics.median(r.output_tokens for r in done)),
        "output_tokens_total": tokens,
        "short_requests": sum(1 for r in done if r.output_tokens < expected_tokens),
        "events_per_token": round(per_token, 3),
        "streams_tokens": visible,
    }
