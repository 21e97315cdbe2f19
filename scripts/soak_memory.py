"""Memory over the soak: RSS of every process sampled every few seconds, and the growth from the end
of the warm-up to the end of the run against a per-process allowance."""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from typing import Any

from soak_stack import SoakStack
from soak_traffic import Run

# Growth allowed from the end of the warm-up to the end of the run, per process (MiB). The model
# runner (Worker) keeps shape-keyed kernel/allocator caches that fill as new batch shapes appear.
ALLOWANCE_MIB = {"server": 48, "EngineCore": 48, "Worker": 160, "gateway": 48}


async def sample(stack: SoakStack, every: float, run: Run, stop: asyncio.Event) -> None:
    """Append one sample to run.samples every `every` seconds until `stop` is set."""
    while not stop.is_set():
        point: dict[str, Any] = {"t": round(time.monotonic() - run.started, 1)}
        sizes = await asyncio.to_thread(stack.rss_mib)
        point["rss_mib"] = {k: round(v, 1) for k, v in sizes.items() if k in ALLOWANCE_MIB}
        with contextlib.suppress(OSError):
            point["active_streams"] = await asyncio.to_thread(stack.metric, "gptoss_active_streams")
        point["requests"] = sum(run.outcomes.values())
        run.samples.append(point)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)


def _slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope, per minute."""
    if len(points) < 3:
        return 0.0
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return 60 * sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else 0.0


def analyse(run: Run, warm_up: float, duration: float) -> dict[str, dict[str, float]]:
    loaded = [s for s in run.samples if warm_up <= s["t"] <= duration + 1]
    window = max(3, len(loaded) // 10)
    growth: dict[str, dict[str, float]] = {}
    for name in ALLOWANCE_MIB:
        series = [(s["t"], s["rss_mib"][name]) for s in loaded if name in s["rss_mib"]]
        if len(series) < 2 * window:
            continue
        start = statistics.median(v for _, v in series[:window])
        end = statistics.median(v for _, v in series[-window:])
        half = len(series) // 2
        middle = statistics.median(v for _, v in series[half - window // 2 : half + window // 2 + 1])
        growth[name] = {
            "start_mib": round(start, 1),
            "end_mib": round(end, 1),
            "growth_mib": round(end - start, 1),
            # A cache filling up grows less in the second half; a per-request leak grows alike.
            "growth_first_half_mib": round(middle - start, 1),
            "growth_second_half_mib": round(end - middle, 1),
            "slope_mib_per_min": round(_slope(series), 2),
            "allowance_mib": ALLOWANCE_MIB[name],
            "peak_mib": round(max(v for _, v in series), 1),
        }
    return growth
