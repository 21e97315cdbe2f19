"""Every ```bash block of README's "Debugging with grpcurl / buf curl" runs against the live server.

Commands are taken verbatim from the README (only the port changes) and run through reflection;
each one's output is checked against what the typed client says about the same server.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable
from typing import Any

import pytest
from google.protobuf import json_format
from gptoss import Client
from gptoss.v1 import inference_pb2 as pb

from tests.clients.e2e_support import REPO, clean_env, run
from tests.support.server_thread import ServerThread

pytestmark = pytest.mark.engine

README_TARGET = "127.0.0.1:50051"
SECTION = "## Debugging with grpcurl / buf curl"


def readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    assert SECTION in text, "README lost its buf curl section"
    section = text.split(SECTION, 1)[1]
    section = re.split(r"^## ", section, flags=re.M)[0]
    return re.findall(r"^```bash\n(.*?)^```", section, flags=re.S | re.M)


COMMANDS = readme_commands()


def json_values(text: str) -> list[Any]:
    """buf curl prints one (pretty) JSON document per message, back to back."""
    decoder, values, index = json.JSONDecoder(), [], 0
    text = text.strip()
    while index < len(text):
        value, index = decoder.raw_decode(text, index)
        values.append(value)
        while index < len(text) and text[index].isspace():
            index += 1
    return values


def request_json(command: str) -> dict[str, Any]:
    argv = shlex.split(command.replace("\\\n", " "))
    return json.loads(argv[argv.index("-d") + 1]) if "-d" in argv else {}


Checker = Callable[[str, "Result", Client, ServerThread], None]


class Result:
    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def check_list_services(command: str, result: Result, client: Client, server: ServerThread) -> None:
    assert result.returncode == 0, result.stderr
    services = set(result.stdout.split())
    assert {"gptoss.v1.InferenceService", "grpc.health.v1.Health"} <= services
    assert any(s.startswith("grpc.reflection.") for s in services)


def check_list_methods(command: str, result: Result, client: Client, server: ServerThread) -> None:
    assert result.returncode == 0, result.stderr
    methods = set(result.stdout.split())
    assert {f"gptoss.v1.InferenceService/{m}" for m in ("Generate", "GetModelInfo", "CountTokens")} <= methods
    assert "grpc.health.v1.Health/Check" in methods


def check_health(command: str, result: Result, client: Client, server: ServerThread) -> None:
    assert result.returncode == 0, result.stderr
    service = request_json(command).get("service", "")
    assert json_values(result.stdout) == [{"status": client.health(service).value}]
    assert client.health(service).value == "SERVING"


def check_model_info(command: str, result: Result, client: Client, server: ServerThread) -> None:
    assert result.returncode == 0, result.stderr
    [info] = json_values(result.stdout)
    expected = client.model_info()
    assert info["modelId"] == expected.model_id == server.settings.model_id
    assert info["maxContextLength"] == expected.max_context_length
    assert info["maxConcurrentRequests"] == expected.max_concurrent_requests


def check_count_tokens(command: str, result: Result, client: Client, server: ServerThread) -> None:
    assert result.returncode == 0, result.stderr
    [count] = json_values(result.stdout)
    request = json_format.ParseDict(request_json(command), pb.CountTokensRequest())
    assert count["promptTokens"] == client.count_tokens(request).prompt_tokens > 0


def check_generate(command: str, result: Result, client: Client, server: ServerThread) -> None:
    body = request_json(command)
    if body.get("model"):  # the error recipe
        assert result.returncode == 5 << 3, result.stderr  # buf curl: gRPC code << 3
        [error] = json_values(result.stderr)
        assert error["code"] == "not_found" and body["model"] in error["message"]
        assert [d["type"] for d in error["details"]] == ["google.rpc.ErrorInfo"]
        return
    assert result.returncode == 0, result.stderr
    events = json_values(result.stdout)
    assert events, "no events"
    *deltas, last = events
    assert all(
        len(e) == 1 and next(iter(e)) in ("reasoning", "content", "toolCall", "toolCallDone") for e in deltas
    )
    done = last["done"]
    assert done["finishReason"] in ("FINISH_REASON_STOP", "FINISH_REASON_LENGTH", "FINISH_REASON_TOOL_CALLS")
    assert 0 < done["usage"]["completionTokens"] <= body.get("maxTokens", server.settings.max_model_len)
    request = json_format.ParseDict(body, pb.CountTokensRequest(), ignore_unknown_fields=True)
    assert done["usage"]["promptTokens"] == client.count_tokens(request).prompt_tokens
    assert done["requestId"] and "total" in done["timings"]
    if body.get("tools"):  # the README's tool recipe is the default model's contract (models/harmony-tiny)
        calls = [e["toolCallDone"] for e in deltas if "toolCallDone" in e]
        assert [(c["name"], json.loads(c["arguments"])) for c in calls] == [
            ("get_weather", {"city": "Paris"})
        ]
        assert done["finishReason"] == "FINISH_REASON_TOOL_CALLS"


CHECKS: list[tuple[str, Checker]] = [
    ("--list-services", check_list_services),
    ("--list-methods", check_list_methods),
    ("/grpc.health.v1.Health/Check", check_health),
    ("/gptoss.v1.InferenceService/GetModelInfo", check_model_info),
    ("/gptoss.v1.InferenceService/CountTokens", check_count_tokens),
    ("/gptoss.v1.InferenceService/Generate", check_generate),
]


def test_the_section_covers_every_recipe() -> None:
    assert all(c.lstrip().startswith("buf curl ") for c in COMMANDS), "a ```bash block that is not buf curl"
    assert all(README_TARGET in c for c in COMMANDS)
    covered = {key for key, _ in CHECKS if any(key in c for c in COMMANDS)}
    assert covered == {key for key, _ in CHECKS}, "a recipe disappeared from the README"


@pytest.mark.parametrize("command", COMMANDS, ids=[f"block{i}" for i in range(len(COMMANDS))])
def test_readme_command(command: str, live_server: ServerThread) -> None:
    checks = [check for key, check in CHECKS if key in command]
    assert len(checks) == 1, f"no (or several) checks for README command: {command}"
    completed = run(
        ["bash", "-euo", "pipefail", "-c", command.replace(README_TARGET, live_server.target)],
        env=clean_env(),
    )
    with Client(live_server.target, timeout=60) as client:
        checks[0](
            command, Result(completed.returncode, completed.stdout, completed.stderr), client, live_server
        )
