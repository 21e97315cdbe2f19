"""clients/examples/*.py run as a user would, against real servers."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.clients.e2e_support import (
    EXAMPLES,
    clean_env,
    decode,
    final_script,
    run,
    tool_call_script,
)
from tests.support.gateway_process import GatewayProcess
from tests.support.server_thread import ServerThread


@pytest.mark.engine
def test_stub_call(live_server: ServerThread) -> None:
    result = run(
        [sys.executable, str(EXAMPLES / "stub_call.py"), "--target", live_server.target, "--max-tokens", "8"]
    )
    assert result.returncode == 0, result.stderr
    assert (
        f"model {live_server.settings.model_id} (context {live_server.settings.max_model_len})"
        in result.stderr
    )
    finish = re.search(
        r"finish=FINISH_REASON_(STOP|LENGTH) prompt_tokens=(\d+) completion_tokens=(\d+)", result.stderr
    )
    assert finish, result.stderr
    assert int(finish.group(2)) > 0 and 0 < int(finish.group(3)) <= 8


def test_tool_loop_runs_the_function_and_sends_the_result_back(
    scripted_server: Callable[..., ServerThread],
) -> None:
    """First turn: the (scripted) model calls get_weather; second turn: it sees the tool result and answers."""

    def script(prompt: list[int]) -> list[list[int]]:
        seen_result = "temperature_c" in decode(prompt)
        return (
            final_script("It is clear, 21 C.")
            if seen_result
            else tool_call_script("get_weather", '{"city":"Paris"}')
        )

    server = scripted_server(script)
    result = run(
        [sys.executable, str(EXAMPLES / "tool_loop.py"), "--target", server.target, "Weather in Paris?"]
    )
    assert result.returncode == 0, result.stderr
    assert "round 1: finish=tool_calls" in result.stderr
    assert (
        'tool get_weather({"city":"Paris"}) -> {"city": "Paris", "temperature_c": 21, "sky": "clear"}'
        in result.stderr
    )
    assert "round 2: finish=stop" in result.stderr
    assert result.stdout == "It is clear, 21 C.\n"
    second = decode(server.engine.prompts[-1])  # type: ignore[attr-defined]
    # The tool result went back as the tool message answering that call.
    assert (
        "<|start|>functions.get_weather<|channel|>commentary to=assistant<|message|>"
        '{"city": "Paris", "temperature_c": 21, "sky": "clear"}<|end|>'
    ) in second


@pytest.fixture
def gateway(live_server: ServerThread, tmp_path: Path) -> Iterator[str]:
    """The REST gateway as a subprocess in front of the live gRPC server."""
    gateway = GatewayProcess([live_server.target], env=clean_env(), log_path=tmp_path / "gateway.log")
    with gateway.start(timeout=60):
        yield f"{gateway.url}/v1"


@pytest.mark.engine
def test_openai_sdk_through_the_gateway(gateway: str, live_server: ServerThread) -> None:
    result = run(
        [sys.executable, str(EXAMPLES / "openai_sdk.py"), "--base-url", gateway, "--max-tokens", "8"]
    )
    assert result.returncode == 0, result.stderr
    assert f"model: {live_server.settings.model_id}" in result.stderr
    usage = re.search(r"usage: (\d+) prompt, (\d+) completion", result.stderr)
    assert usage and int(usage.group(1)) > 0 and 0 < int(usage.group(2)) <= 8, result.stderr
    assert re.search(r"^responses API: status=(completed|incomplete) output_text=", result.stdout, re.M), (
        result.stdout
    )
