"""The anchors' command lines (vllm-serve-apiN, smg's vLLM gRPC worker), their report order, and the
one client difference: SMG is never sent ignore_eos (it refuses it for Harmony models)."""

from __future__ import annotations

import json

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
