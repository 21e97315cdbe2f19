"""The installed `gptoss` console script as a subprocess, against real servers."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from gptoss.contract import ERROR_DOMAIN, STATUS_DETAILS_KEY
from gptoss.v1 import inference_pb2 as pb
from gptoss.v1 import inference_pb2_grpc as pb_grpc

from tests.clients.e2e_support import decode, final_script, gptoss, tool_call_script, unused_port
from tests.support.server_thread import ServerThread

USAGE_LINE = re.compile(
    r"^usage: prompt=(\d+) completion=(\d+) reasoning=(\d+) cached=(\d+) total=(\d+)$", re.M
)
FINISH_LINE = re.compile(
    r"^finish=(stop|length) queue=\S+ ttft=\d+\.\d{3}s decode=.* total=\d+\.\d{3}s request_id=(\S+)$", re.M
)


@pytest.mark.engine
def test_chat_one_shot(live_server: ServerThread) -> None:
    result = gptoss(
        "chat", "--target", live_server.target, "--max-tokens", "12", "--reasoning-effort", "low", "Say hi"
    )
    assert result.returncode == 0, result.stderr
    usage = USAGE_LINE.search(result.stderr)
    assert usage, result.stderr
    prompt, completion, _, _, total = map(int, usage.groups())
    assert prompt > 0 and 0 < completion <= 12 and total == prompt + completion
    assert FINISH_LINE.search(result.stderr), result.stderr
    assert "\x1b[" not in result.stderr + result.stdout  # not a terminal: no ANSI


@pytest.mark.engine
def test_chat_json_from_stdin_agrees_with_count_tokens(live_server: ServerThread) -> None:
    target = ["--target", live_server.target]
    chat = gptoss("chat", *target, "--json", "--max-tokens", "8", "--system", "Be brief.", stdin="Say hi\n")
    count = gptoss("count-tokens", *target, "--json", "--system", "Be brief.", stdin="Say hi\n")
    assert chat.returncode == 0 and count.returncode == 0, chat.stderr + count.stderr
    data, counted = json.loads(chat.stdout), json.loads(count.stdout)
    assert data["finish_reason"] in ("stop", "length")
    assert 0 < data["usage"]["completion_tokens"] <= 8
    assert data["usage"]["prompt_tokens"] == counted["prompt_tokens"] > 0
    assert counted["max_context_length"] == live_server.settings.max_model_len
    assert data["request_id"].startswith("req-")
    assert data["timings"]["total_s"] > 0


@pytest.mark.engine
def test_models_count_tokens_and_health(live_server: ServerThread) -> None:
    target = ["--target", live_server.target]
    models = gptoss("models", *target)
    assert models.returncode == 0
    assert f"model_id: {live_server.settings.model_id}\n" in models.stdout
    assert f"max_context_length: {live_server.settings.max_model_len}\n" in models.stdout
    short, long = gptoss("count-tokens", *target, "hi"), gptoss("count-tokens", *target, "hi " * 50)
    n_short = int(re.search(r"prompt_tokens: (\d+)", short.stdout).group(1))  # type: ignore[union-attr]
    n_long = int(re.search(r"prompt_tokens: (\d+)", long.stdout).group(1))  # type: ignore[union-attr]
    assert 0 < n_short < n_long
    readiness = gptoss("health", *target)
    assert (readiness.returncode, readiness.stdout) == (0, "SERVING\n")
    liveness = gptoss("health", *target, "--liveness", "--json")
    assert liveness.returncode == 0 and json.loads(liveness.stdout) == {"service": "", "status": "SERVING"}


@pytest.mark.engine
@pytest.mark.parametrize(
    ("args", "exit_code", "message"),
    [
        (["chat", "--model", "no-such-model", "hi"], 9, "not served"),  # NOT_FOUND, not "invalid request"
        (["chat", "--top-p", "0.5", "--max-tokens", "999999", "hi"], 6, "max_tokens"),
        (["chat", "--timeout", "0.001", "hi"], 5, "deadline exceeded"),
    ],
)
def test_server_side_failures(
    live_server: ServerThread, args: list[str], exit_code: int, message: str
) -> None:
    result = gptoss(*args, "--target", live_server.target)
    assert result.returncode == exit_code, result.stderr
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and message in result.stderr


def test_server_down_exits_3() -> None:
    for command in (["models"], ["health"], ["chat", "hi"]):
        result = gptoss(*command, "--target", f"127.0.0.1:{unused_port()}", timeout=60)
        assert result.returncode == 3, result.stderr
        assert result.stderr.startswith("gptoss: server 127.0.0.1:") and "unavailable" in result.stderr
        assert result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    "args",
    [
        ["chat", "--reasoning-effort", "extreme", "hi"],
        ["chat", "--max-tokens", "-1", "hi"],
        ["frobnicate"],
        [],
        ["chat", "--cert", "client.pem", "hi"],
    ],
)
def test_bad_arguments_exit_2(args: list[str]) -> None:
    result = gptoss(*args, "--target", f"127.0.0.1:{unused_port()}")
    assert result.returncode == 2
    assert "error:" in result.stderr and result.stdout == ""


def test_api_keys(scripted_server: Callable[..., ServerThread]) -> None:
    server = scripted_server(final_script("ok"), api_keys=["sk-right"])
    denied = gptoss("models", "--target", server.target)
    assert denied.returncode == 4 and "--api-key" in denied.stderr
    assert gptoss("models", "--target", server.target, "--api-key", "sk-wrong").returncode == 4
    allowed = gptoss("chat", "--target", server.target, "--api-key", "sk-right", "hi")
    assert allowed.returncode == 0 and allowed.stdout == "ok\n"
    assert gptoss("health", "--target", server.target).returncode == 0  # health stays open


def test_global_flags_work_before_and_after_the_subcommand(
    scripted_server: Callable[..., ServerThread],
) -> None:
    server = scripted_server(final_script("ok"))
    before = gptoss("--target", server.target, "health")
    after = gptoss("health", "--target", server.target)
    assert (before.returncode, before.stdout) == (after.returncode, after.stdout) == (0, "SERVING\n")
    # After the subcommand wins over before it (the later flag, as a user would expect).
    both = gptoss("--target", f"127.0.0.1:{unused_port()}", "chat", "--target", server.target, "hi")
    assert (both.returncode, both.stdout) == (0, "ok\n"), both.stderr


def test_explain_error_decodes_a_real_trailer(scripted_server: Callable[..., ServerThread]) -> None:
    """The service's own NOT_FOUND trailer, as `buf curl -v` shows it, decoded by the CLI."""
    server = scripted_server(final_script("ok"))
    with grpc.insecure_channel(server.target) as channel:
        stub = pb_grpc.InferenceServiceStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            list(
                stub.Generate(
                    pb.GenerateRequest(messages=[pb.Message(role=pb.ROLE_USER, content="hi")], model="nope")
                )
            )
    trailers = dict(info.value.trailing_metadata())  # type: ignore[attr-defined]
    encoded = base64.b64encode(trailers[STATUS_DETAILS_KEY]).decode().rstrip("=")
    result = gptoss("explain-error", "--json", stdin=f"< Grpc-Status-Details-Bin: {encoded}\n")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert (data["code"], data["reason"], data["domain"]) == ("NOT_FOUND", "MODEL_NOT_FOUND", ERROR_DOMAIN)
    assert data["metadata"]["param"] == "model" and data["exit_code"] == 9


def test_chat_shows_tool_calls(scripted_server: Callable[..., ServerThread], tmp_path: Path) -> None:
    """Real servicer + Harmony parser on a scripted engine: the CLI shows the parsed call."""
    server = scripted_server(tool_call_script("get_weather", '{"city":"Paris"}'))
    tools = tmp_path / "tools.json"
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    tools.write_text(
        json.dumps([{"type": "function", "function": {"name": "get_weather", "parameters": schema}}])
    )
    result = gptoss("chat", "--target", server.target, "--tools", str(tools), "Weather in Paris?")
    assert result.returncode == 0, result.stderr
    assert re.search(r'^tool call \[0\] get_weather\(\{"city":"Paris"\}\) id=call_\S+$', result.stderr, re.M)
    assert "[reasoning] Need a tool." in result.stderr
    assert "finish=tool_calls" in result.stderr and result.stdout == ""
    prompt = decode(server.engine.prompts[-1])  # type: ignore[attr-defined]
    assert (
        "type get_weather = (_: {" in prompt and "Weather in Paris?" in prompt
    )  # --tools reached the renderer


@pytest.mark.engine
def test_chat_json_schema_answers_valid_json(live_server: ServerThread, tmp_path: Path) -> None:
    """--json-schema through the real server: sampled at temperature 1.0, the grammar alone makes
    the answer valid; --max-reasoning-tokens keeps the analysis short."""
    schema = {
        "type": "object",
        "properties": {
            "city": {"enum": ["Paris", "Oslo"]},
            "rank": {"type": "integer", "minimum": 1, "maximum": 9},
        },
        "required": ["city", "rank"],
        "additionalProperties": False,
    }
    path = tmp_path / "city.json"
    path.write_text(json.dumps(schema))
    options = ["--json-schema", str(path), "--max-reasoning-tokens", "32", "--temperature", "1.0"]
    result = gptoss(
        "chat", "--target", live_server.target, "--json", *options, "--max-tokens", "300", "A city?"
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["finish_reason"] == "stop", data
    answer = json.loads(data["content"])
    assert (
        answer["city"] in ("Paris", "Oslo") and 1 <= answer["rank"] <= 9 and set(answer) == {"city", "rank"}
    )
