"""bench/: the pure parts (statistics, rows, report, target verdicts) without an engine."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench.aggregate import ROW_KEYS
from bench.report import Report
from bench.stats import RequestResult, percentile, summarize


def test_percentile_interpolates_like_numpy() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([5.0], 99) == 5.0
    assert percentile([0.0, 10.0], 99) == pytest.approx(9.9)


def _request(start: float, ttft: float | None, tokens: int, events: int, end: float) -> RequestResult:
    return RequestResult(
        ok=True,
        start=start,
        end=end,
        ttft=ttft,
        output_tokens=tokens,
        prompt_tokens=100,
        events=events,
        itl=[0.01] * max(tokens - 1, 0) if ttft is not None else [],
    )


def test_summarize_throughput_and_latency() -> None:
    results = [_request(0.0, 0.05, 100, 100, 1.0), _request(0.0, 0.15, 100, 100, 2.0)]
    summary = summarize(results, expected_tokens=100)
    assert summary["output_tok_s"] == 100.0  # 200 tokens over a 2 s wall
    assert summary["ttft_p50_ms"] == pytest.approx(100.0)
    assert summary["itl_p50_ms"] == pytest.approx(10.0)
    assert summary["short_requests"] == 0 and summary["streams_tokens"]


def test_summarize_hides_ttft_when_output_arrives_only_at_the_end() -> None:
    # A chat stream on random weights: one event, at the very end.
    results = [_request(0.0, 0.99, 100, 1, 1.0), _request(0.0, None, 90, 0, 1.0)]
    summary = summarize(results, expected_tokens=100)
    assert summary["ttft_p50_ms"] is None and summary["itl_p50_ms"] is None
    assert summary["output_tok_s"] == 190.0 and summary["short_requests"] == 1


def test_summarize_keeps_ttft_for_coalesced_streams() -> None:
    # Stream interval 20: few events per token, but the first one comes early.
    results = [_request(0.0, 0.02, 1024, 52, 4.0)]
    assert summarize(results)["ttft_p50_ms"] == pytest.approx(20.0)


def test_summarize_keeps_ttft_of_a_stalled_burst() -> None:
    # The first tokens after 3 s, then 128 tokens streamed over the next 2.9 s: a stall to report,
    # not a stream that holds its output back (its TTFT is more than half of the request).
    stalled = RequestResult(
        ok=True, start=0.0, end=5.9, ttft=3.0, output_tokens=128, events=8, itl=[2.9 / 127] * 127
    )
    assert summarize([stalled])["ttft_p50_ms"] == pytest.approx(3000.0)


def test_summarize_hides_ttft_when_several_events_arrive_together_at_the_end() -> None:
    flushed = RequestResult(
        ok=True, start=0.0, end=1.0, ttft=0.99, output_tokens=100, events=3, itl=[0.0001] * 99
    )
    assert summarize([flushed])["ttft_p50_ms"] is None


def _point(
    frontend: str, workload: str, concurrency: int, tok_s: float, ttft: float | None
) -> dict[str, Any]:
    return {
        "frontend": frontend,
        "workload": workload,
        "concurrency": concurrency,
        "repeat": 1,
        "requests": concurrency,
        "ok": concurrency,
        "errors": [],
        "wall_s": 1.0,
        "output_tok_s": tok_s,
        "ttft_p50_ms": ttft,
        "ttft_p99_ms": ttft,
        "itl_p50_ms": 5.0,
        "itl_p99_ms": 6.0,
        "e2e_p50_ms": 1000.0,
        "e2e_p99_ms": 1100.0,
        "tpot_mean_ms": 5.0,
        "prompt_tokens": 1000,
        "output_tokens": 1024,
        "server_cpu_cores": {},
    }


def _detail(group: str, points: list[dict[str, Any]]) -> dict[str, Any]:
    meta = {
        "machine": "4xH100",
        "engine": "vllm 0.26.0 gpt-oss-120b tp4",
        "date": "2026-11-27",
        "group": group,
        "profile": "gpt-oss-120b-tp4",
        "engine_args": {"stream_interval": 20},
        "cpus": 64,
        "client_procs": 8,
        "workload": {
            "prompt_tokens": 1000,
            "output_tokens": 1024,
            "concurrency": [64, 256],
            "repeats": 1,
            "waves": 1,
            "warmup_tokens": 16,
            "unique_prompts": False,
            "temperature": 1.0,
        },
    }
    return {"meta": meta, "points": points, "profiles": [], "servers": {}, "notes": []}


def test_report_rows_ratios_and_targets(tmp_path: Path) -> None:
    details = {
        "engine": [_point("engine", "tokens", c, 1000.0 * c, 10.0) for c in (64, 256)],
        "grpc": [_point("grpc", w, c, 990.0 * c, 10.2) for c in (64, 256) for w in ("tokens", "chat")],
        "gateway": [_point("gateway", "chat", c, 900.0 * c, None) for c in (64, 256)],
        "vllm-serve": [
            _point("vllm-serve", w, c, 950.0 * c, 20.0) for c in (64, 256) for w in ("tokens", "chat")
        ],
    }
    for group, points in details.items():
        (tmp_path / f"detail-{group}.json").write_text(json.dumps(_detail(group, points)))
    report = Report(tmp_path)
    report.write(plots=False)
    rows = json.loads((tmp_path / "rows-tokens.json").read_text())
    assert all(tuple(row) == ROW_KEYS for row in rows)
    assert {row["frontend"] for row in json.loads((tmp_path / "rows-chat.json").read_text())} == {
        "engine",
        "grpc",
        "gateway",
        "vllm-serve",
    }
    verdicts = {target: verdict for target, _, verdict in report.targets()}
    assert verdicts["[tokens] gRPC ≥ 0.98x engine tok/s at 64, 256"] == "met"
    assert verdicts["[tokens] gRPC ≥ 1.10x vllm serve tok/s at 256"] == "**missed**"
    assert verdicts["[tokens] gRPC TTFT p50 ≤ 0.8x vllm serve at 64"] == "met"
    assert verdicts["[chat] gateway ≥ 1.0x vllm serve tok/s at every concurrency"] == "**missed**"
    assert "| 256 |" in (tmp_path / "report.md").read_text()


def test_interleaved_sweep_alternates_workloads_per_point(tmp_path: Path) -> None:
    """`--interleave`: per concurrency, warm each workload, then repeat r of tokens, then of chat."""
    import asyncio
    import time as _time

    from bench.recorder import Recorder
    from bench.run_config import RunConfig
    from bench.sweep import Sweep

    config = RunConfig(
        frontends=["grpc"],
        workloads=["tokens", "chat"],
        profile="cpu-tiny",
        overrides={},
        concurrency=[1, 2],
        prompt_tokens=64,
        output_tokens=4,
        repeats=2,
        out=tmp_path,
        interleave=True,
    )
    calls: list[tuple[str, int, bool]] = []

    def runner(workload: str) -> Any:
        async def run_point(streams: Any, limit_s: float, progress: Any) -> list[RequestResult]:
            calls.append((workload, len(streams), progress is None))
            now = _time.monotonic()
            return [
                RequestResult(ok=True, start=now, end=now + 0.1, ttft=0.01, output_tokens=4) for _ in streams
            ]

        return run_point

    sweep = Sweep(config, Recorder(config, "grpc"), _time.monotonic() + 60)
    asyncio.run(sweep.run_interleaved("grpc", {"tokens": runner("tokens"), "chat": runner("chat")}, {}))
    measured = [(w, n) for w, n, warm in calls if not warm]
    assert measured == [
        ("tokens", 1),
        ("chat", 1),
        ("tokens", 1),
        ("chat", 1),
        ("tokens", 2),
        ("chat", 2),
        ("tokens", 2),
        ("chat", 2),
    ]
    warm_ups = [(w, i) for i, (w, _, warm) in enumerate(calls) if warm]
    assert [w for w, _ in warm_ups] == ["tokens", "chat", "tokens", "chat"]  # each workload, per concurrency
    points = sweep.recorder.data["points"]
    assert [(p["workload"], p["concurrency"], p["repeat"]) for p in points][:4] == [
        ("tokens", 1, 1),
        ("chat", 1, 1),
        ("tokens", 1, 2),
        ("chat", 1, 2),
    ]


def test_cold_burst_is_the_first_point_before_any_warm_up(tmp_path: Path) -> None:
    """`--cold-burst 3`: the fresh server's first requests are one measured point of 3 streams with
    the cold token count, before the per-concurrency warm-up; it is kept out of the medians."""
    import asyncio
    import time as _time

    from bench.recorder import Recorder
    from bench.run_config import RunConfig
    from bench.sweep import Sweep

    config = RunConfig(
        frontends=["grpc"],
        workloads=["chat"],
        profile="cpu-tiny",
        overrides={},
        concurrency=[2],
        prompt_tokens=64,
        output_tokens=8,
        out=tmp_path,
        cold_burst=3,
        cold_tokens=2,
    )
    calls: list[tuple[int, int, bool]] = []

    async def run_point(streams: Any, limit_s: float, progress: Any) -> list[RequestResult]:
        calls.append((len(streams), streams[0][0][1], progress is None))
        now = _time.monotonic()
        return [RequestResult(ok=True, start=now, end=now + 0.1, ttft=0.01, output_tokens=2) for _ in streams]

    recorder = Recorder(config, "grpc")
    sweep = Sweep(config, recorder, _time.monotonic() + 60)
    asyncio.run(sweep.run("grpc", "chat", run_point, {}))
    asyncio.run(sweep.run("gateway", "chat", run_point, {}))  # same server: no second cold burst
    assert calls[0] == (3, 2, False)
    assert [c for c in calls[1:] if c[0] == 3] == []
    points = recorder.data["points"]
    assert [p.get("cold", False) for p in points] == [True, False, False]
