"""The measured points of one (frontend, workload): warm-up, then each concurrency `repeats` times,
workload after workload or interleaved, within the run's time budget."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from bench import procstat
from bench.loadgen import Progress, Stream
from bench.recorder import Recorder
from bench.run_config import RunConfig
from bench.stats import RequestResult, summarize
from bench.workload import PromptFactory, WorkloadKind

PointRunner = Callable[[Sequence[Stream], float, Progress | None], Awaitable[list[RequestResult]]]


class Sweep:
    """Warm-up and measured points for one (frontend, workload)."""

    def __init__(self, config: RunConfig, recorder: Recorder, deadline: float) -> None:
        self.config = config
        self.recorder = recorder
        self.deadline = deadline
        self._prompts: dict[bool, PromptFactory] = {}
        self._next_index = 0
        # The first point on a freshly started server, before any warm-up (`--cold-burst N`).
        self.cold_pending = config.cold_burst > 0

    def factory(self) -> PromptFactory:
        unique = self.config.unique_prompts
        if unique not in self._prompts:
            self._prompts[unique] = PromptFactory(
                self.config.settings(), self.config.prompt_tokens, unique, self.config.prompt_text
            )
        return self._prompts[unique]

    def streams(self, count: int, waves: int, max_tokens: int) -> list[Stream]:
        factory = self.factory()
        streams: list[Stream] = []
        for _ in range(count):
            stream: Stream = []
            for _ in range(waves):
                stream.append((factory.prompt(self._next_index), max_tokens))
                self._next_index += 1
            streams.append(stream)
        return streams

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    async def run(
        self,
        frontend: str,
        workload: WorkloadKind,
        run_point: PointRunner,
        cpu_pids: dict[str, int],
        warm_streams: int = 1,
    ) -> None:
        """Workload-major: every repeat of every concurrency of this workload, in order."""
        await self.run_interleaved(frontend, {workload: run_point}, cpu_pids, warm_streams)

    async def run_interleaved(
        self,
        frontend: str,
        runners: dict[WorkloadKind, PointRunner],
        cpu_pids: dict[str, int],
        warm_streams: int = 1,
    ) -> None:
        """Per concurrency and repeat, one point of each workload in turn: drift over the run (a
        server that has run longer, a warmer or fuller cache) then falls on every workload alike."""
        config = self.config
        if self.cold_pending:
            self.cold_pending = False
            workload, run_point = next(iter(runners.items()))
            await self._measure(
                frontend, workload, run_point, cpu_pids, config.cold_burst, -1, config.cold_tokens
            )
        for concurrency in config.concurrency:
            if self.remaining() < 10:
                self.recorder.add(
                    "notes", f"{frontend}/{'+'.join(runners)} c={concurrency}: skipped, run time budget spent"
                )
                continue
            for run_point in runners.values():
                warm = self.streams(max(warm_streams, min(concurrency, 4)), 1, config.warmup_tokens)
                await run_point(warm, min(config.point_timeout, self.remaining()), None)
            for repeat in range(config.repeats):
                for workload, run_point in runners.items():
                    if self.remaining() < 10:
                        self.recorder.add(
                            "notes", f"{frontend}/{workload} c={concurrency} r{repeat + 1}: skipped, budget"
                        )
                        continue
                    await self._measure(frontend, workload, run_point, cpu_pids, concurrency, repeat)

    async def _measure(
        self,
        frontend: str,
        workload: WorkloadKind,
        run_point: PointRunner,
        cpu_pids: dict[str, int],
        concurrency: int,
        repeat: int,
        output_tokens: int | None = None,
    ) -> None:
        """One measured point; repeat -1 is the cold burst (kept out of the medians)."""
        config = self.config
        tokens = output_tokens or config.output_tokens
        streams = self.streams(concurrency, config.waves, tokens)
        cold = repeat < 0
        label = f"{frontend}/{workload} c={concurrency} " + (
            "cold burst" if cold else f"r{repeat + 1}/{config.repeats}"
        )
        progress = Progress(label, concurrency * config.waves, concurrency * config.waves * tokens)
        meter = procstat.CpuMeter(cpu_pids)
        meter.start()
        started_unix = time.time()  # to line the point up with server-side traces
        results = await run_point(streams, min(config.point_timeout, self.remaining()), progress)
        point = {
            "started_unix": round(started_unix, 2),
            "frontend": frontend,
            "workload": workload,
            "concurrency": concurrency,
            "repeat": repeat + 1,
            **({"cold": True} if cold else {}),
            **summarize(results, tokens),
            "server_cpu_cores": meter.stop(),
        }
        self.recorder.add("points", point)
        _print_point(point)


def _print_point(point: dict[str, Any]) -> None:
    def fmt(value: Any) -> str:
        return "n/a" if value is None else f"{value:,.1f}"

    print(
        f"  -> {point['frontend']}/{point['workload']} c={point['concurrency']}"
        + (" (cold burst)" if point.get("cold") else "")
        + ": "
        f"{point['output_tok_s']:,.0f} tok/s, TTFT p50 {fmt(point.get('ttft_p50_ms'))} ms, "
        f"ITL p50 {fmt(point.get('itl_p50_ms'))} ms, ok {point['ok']}/{point['requests']}"
        + (f", errors {point['errors']}" if point.get("errors") else "")
        + (f", cpu {point['server_cpu_cores']}" if point.get("server_cpu_cores") else ""),
        flush=True,
    )
