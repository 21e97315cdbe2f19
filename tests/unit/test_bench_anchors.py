"""The anchors' command lines (vllm-serve-apiN, smg's vLLM gRPC worker), their report order, and the
one client difference: SMG is never sent ignore_eos (it refuses it for Harmony models)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench import report_tables
from bench.aggregate import frontend_rank
from bench.clients import ClientSpec, OpenAIClient, Tally
from bench.servers import vllm_serve_argv
from bench.shaped_output import FQCN
from bench.workload import Prompt
from service.config import Settings

SETTINGS = Settings(profile="cpu-tiny", model="/m", load_format="dummy", logits_processors=[FQCN])


def test_api_servers_go_through_the_cli_with_the_same_engine_arguments() -> None:
    plain = vllm_serve_argv(SETTINGS, 8000)
    four = vllm_serve_argv(SETTINGS, 8000, api_servers=4)
    assert plain[1:3] == ["-m", "vllm.entrypoints.openai.api_server"] and "--model" in plain
    assert four[1:5] == ["-m", "bench.vllm_cli", "serve", "/m"]
    assert four[four.index("--api-server-count") + 1] == "4"
    assert four[four.index("--logits-processors") + 1] == FQCN  # a list flag: its items, not its repr
    assert set(plain) - {"vllm.entrypoints.openai.api_server", "--model", "/m"} <= set(four)


def test_grpc_worker_is_vllm_serve_grpc() -> None:
    argv = vllm_serve_argv(SETTINGS, 50071, grpc=True)
    assert argv[1:6] == ["-m", "bench.vllm_cli", "serve", "/m", "--grpc"]


def test_report_order_puts_anchors_after_ours() -> None:
    names = ["smg", "vllm-serve-api4", "gateway", "vllm-serve", "engine", "vllm-serve-api2", "grpc"]
    assert sorted(names, key=frontend_rank) == [
        "engine",
        "grpc",
        "gateway",
        "vllm-serve",
        "vllm-serve-api2",
        "vllm-serve-api4",
        "smg",
    ]


def test_smg_requests_carry_no_ignore_eos() -> None:
    prompt = Prompt(text="hi", token_ids=(1, 2))
    for ignore_eos in (True, False):
        spec = ClientSpec("openai-chat", "http://x", "m", 1.0, 10.0, ignore_eos)
        body = json.loads(OpenAIClient(spec, Tally())._body(prompt, 8))
        assert ("ignore_eos" in body) is ignore_eos and body["max_tokens"] == 8


def _chat_point(
    frontend: str, c: int, tok_s: float, ttft: float, cpu: float, cold: bool = False
) -> dict[str, Any]:
    point = {
        "frontend": frontend,
        "workload": "chat",
        "concurrency": c,
        "repeat": 0 if cold else 1,
        "requests": c,
        "ok": c,
        "output_tok_s": tok_s,
        "ttft_p50_ms": ttft,
        "ttft_p99_ms": ttft,
        "output_tokens": 128 if cold else 512,
        "server_cpu_cores": {frontend: cpu},
    }
    return point | ({"cold": True} if cold else {})


def test_targets_against_the_best_anchor_cold_burst_and_cpu(tmp_path: Path) -> None:
    from bench.report import Report

    points = {
        "engine": [_chat_point("engine", c, 1000.0 * c, 50.0, 0.0) for c in (64, 256)]
        + [_chat_point("engine", 256, 9000.0, 400.0, 0.0, cold=True)],
        "grpc-gateway": [_chat_point("gateway", c, 990.0 * c, 60.0, 1.0) for c in (64, 256)]
        + [_chat_point("gateway", 256, 9000.0, 300.0, 1.0, cold=True)],
        "vllm-serve-api4": [_chat_point("vllm-serve-api4", c, 980.0 * c, 100.0, 4.0) for c in (64, 256)]
        + [_chat_point("vllm-serve-api4", 256, 5000.0, 4000.0, 4.0, cold=True)],
        "smg": [_chat_point("smg", c, 995.0 * c, 70.0, 0.5) for c in (64, 256)]
        + [_chat_point("smg", 256, 8000.0, 700.0, 0.5, cold=True)],
    }
    for group, pts in points.items():
        meta = {"machine": "1xH200", "engine": "vllm 0.26.0", "date": "2026-12-02", "group": group}
        (tmp_path / f"detail-{group}.json").write_text(json.dumps({"meta": meta, "points": pts}))
    report = Report(tmp_path)
    assert len(report.cold) == 4 and all(r["repeats"] == 1 for r in report.merged.values())
    verdicts = {t: (m, v) for t, m, v in report.targets()}
    measured, verdict = verdicts["[chat] gateway ≥ 1.0x best anchor tok/s at 64, 256"]
    assert verdict == "**missed**" and "(smg)" in measured  # 990 < smg's 995 per stream
    measured, verdict = verdicts["[chat] gateway TTFT p50 ≤ 0.8x best anchor at 64, 256"]
    assert verdict == "**missed**" and "0.86x (smg)" in measured  # 60 / 70: the lowest anchor TTFT
    assert verdicts["[chat] gateway ≥ 0.97x engine tok/s at 64, 256"][1] == "met"
    measured, verdict = verdicts["cold: first 256-stream burst TTFT p50 ≤ 0.5x the best anchor's"]
    assert verdict == "met" and "gateway 300 ms vs smg 700 ms" in measured
    cpu = next(v for t, v in verdicts.items() if "cores per 10k" in t)
    assert cpu[1] == "met" and "smg" in cpu[0]
    cold_rows = "\n".join(report_tables.cold_table(report))
    assert "| gateway / chat | 256 | 128 |" in cold_rows and "5.00x" in cold_rows  # 300 / 60 ms
