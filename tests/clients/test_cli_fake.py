"""The `gptoss` CLI in-process against the fake server: rendering, exit codes, the REPL.

Exact event sequences (reasoning then answer, tool calls, each failure status) come from the fake;
the end-to-end runs against the real server are in test_e2e_cli.py.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from gptoss.cli import ExitCode, Io, main
from gptoss.v1 import inference_pb2 as pb

from tests.clients.fake_service import Fail, FakeServer, Reply, content, done, reasoning, tool_call

DIM = "\x1b[2m"


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def run(
    argv: list[str], *, stdin: str = "", tty: bool = False, lines: list[str] | None = None
) -> tuple[int, str, str]:
    """main() with captured streams; `lines` feeds the REPL (EOF after the last)."""
    queued: Iterator[str] = iter(lines or [])

    def read_line(prompt: str) -> str:
        try:
            return next(queued)
        except StopIteration:
            raise EOFError from None

    stdin_stream = Tty(stdin) if tty else io.StringIO(stdin)
    out, err = (Tty() if tty else io.StringIO()), (Tty() if tty else io.StringIO())
    code = main(argv, Io(stdin_stream, out, err, read_line))
    return code, out.getvalue(), err.getvalue()


def test_chat_streams_answer_on_stdout_and_the_rest_on_stderr(fake: FakeServer) -> None:
    fake.servicer.generate_script = [
        Reply([reasoning("Let me "), reasoning("think."), content("Hello"), content(" world"), done()])
    ]
    code, out, err = run(["chat", "--target", fake.target, "hi"])
    assert code == ExitCode.OK
    assert out == "Hello world\n"
    assert "[reasoning] Let me think." in err
    assert DIM not in err  # not a terminal: no ANSI
    assert "usage: prompt=11 completion=7 reasoning=3 cached=2 total=18" in err
    assert "finish=stop" in err and "ttft=0.250s" in err and "total=-" in err and "request_id=req-fake" in err


def test_chat_dims_reasoning_on_a_terminal_unless_no_color(
    fake: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    fake.servicer.generate_script = [Reply([reasoning("hmm"), content("ok"), done()])]
    _, out, err = run(["chat", "--target", fake.target, "hi"], tty=True)
    assert f"{DIM}hmm\x1b[0m" in err and out == "ok\n"
    _, _, plain = run(["chat", "--target", fake.target, "--no-color", "hi"], tty=True)
    assert "\x1b[" not in plain and "hmm" in plain
    _, _, hidden = run(["chat", "--target", fake.target, "--hide-reasoning", "hi"])
    assert "hmm" not in hidden


def test_chat_shows_tool_calls_and_sends_the_options(fake: FakeServer, tmp_path: Path) -> None:
    tools = tmp_path / "tools.json"
    tools.write_text(
        json.dumps([{"name": "get_weather", "parameters": {"type": "object", "properties": {}}}])
    )
    fake.servicer.generate_script = [
        Reply(
            [*tool_call(0, "call_1", "get_weather", '{"city": "Paris"}'), done(pb.FINISH_REASON_TOOL_CALLS)]
        )
    ]
    argv = [
        "chat",
        "--target",
        fake.target,
        "--tools",
        str(tools),
        "--max-tokens",
        "9",
        "--reasoning-effort",
        "low",
    ]
    code, out, err = run([*argv, "--system", "be brief", "--temperature", "0.5", "weather?"])
    assert code == ExitCode.OK and out == ""
    assert 'tool call [0] get_weather({"city": "Paris"}) id=call_1' in err
    assert "finish=tool_calls" in err
    request = fake.servicer.requests[0]
    assert [m.role for m in request.messages] == [pb.ROLE_SYSTEM, pb.ROLE_USER]
    assert request.messages[1].content == "weather?" and request.tools[0].name == "get_weather"
    assert (request.max_tokens, request.reasoning_effort, request.temperature) == (
        9,
        pb.REASONING_EFFORT_LOW,
        0.5,
    )


def test_chat_json_and_stdin_prompt(fake: FakeServer) -> None:
    fake.servicer.generate_script = [
        Reply([reasoning("r"), content("c"), *tool_call(0, "i", "f", "{}"), done()])
    ]
    code, out, _ = run(["chat", "--target", fake.target, "--json"], stdin="from stdin\n")
    assert code == ExitCode.OK
    data = json.loads(out)
    assert data["reasoning"] == "r" and data["content"] == "c" and data["finish_reason"] == "stop"
    assert data["tool_calls"] == [{"id": "i", "name": "f", "arguments": "{}"}]
    assert data["usage"]["total_tokens"] == 18 and data["timings"]["decode_time_s"] == 1.5
    assert fake.servicer.requests[0].messages[0].content == "from stdin\n"


def test_a_warning_from_the_server_does_not_fail_the_turn(fake: FakeServer) -> None:
    fake.servicer.generate_script = [
        Reply([done(pb.FINISH_REASON_LENGTH, error_message="malformed Harmony")])
    ]
    code, _, err = run(["chat", "--target", fake.target, "hi"])
    assert code == ExitCode.OK and "warning: malformed Harmony" in err and "error:" not in err


def test_generation_error_exits_1(fake: FakeServer) -> None:
    fake.servicer.generate_script = [Reply([done(pb.FINISH_REASON_ERROR, error_message="engine hiccup")])]
    code, _, err = run(["chat", "--target", fake.target, "hi"])
    assert code == ExitCode.FAILURE and "error: engine hiccup" in err


@pytest.mark.parametrize(
    ("failure", "exit_code", "message"),
    [
        (Fail(grpc.StatusCode.UNAUTHENTICATED, "bad key", "INVALID_API_KEY"), ExitCode.AUTH, "--api-key"),
        (
            Fail(grpc.StatusCode.INVALID_ARGUMENT, "too long", "CONTEXT_LENGTH_EXCEEDED"),
            ExitCode.INVALID_REQUEST,
            "too long",
        ),
        (
            Fail(grpc.StatusCode.NOT_FOUND, "no model", "MODEL_NOT_FOUND", {"param": "model"}),
            ExitCode.NOT_FOUND,  # was 6 (invalid request): every status exits with its own code
            "gptoss models",
        ),
        (Fail(grpc.StatusCode.RESOURCE_EXHAUSTED, "busy", "OVERLOADED"), ExitCode.OVERLOADED, "busy"),
        (Fail(grpc.StatusCode.UNAVAILABLE, "draining", "DRAINING"), ExitCode.UNAVAILABLE, "unavailable"),
        (Fail(grpc.StatusCode.INTERNAL, "boom"), ExitCode.FAILURE, "boom"),
    ],
)
def test_failures_map_to_distinct_exit_codes(
    fake: FakeServer, failure: Fail, exit_code: int, message: str
) -> None:
    fake.servicer.generate_script = [failure]
    code, out, err = run(["chat", "--target", fake.target, "hi"])
    assert code == exit_code
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("gptoss: ") and message in err


def test_deadline_exit_code(fake: FakeServer) -> None:
    fake.servicer.generate_script = [Reply([], hang=True)]
    code, _, err = run(["chat", "--target", fake.target, "--timeout", "0.3", "hi"])
    assert code == ExitCode.DEADLINE and "deadline exceeded after 0.3s" in err


def test_models_count_tokens_health(fake: FakeServer) -> None:
    code, out, _ = run(["models", "--target", fake.target])
    assert code == 0 and "model_id: fake-model\n" in out and "max_context_length: 4096\n" in out
    code, out, _ = run(["models", "--target", fake.target, "--json"])
    assert json.loads(out)["engine_version"] == "0.0-fake"
    code, out, _ = run(["count-tokens", "--target", fake.target, "--json", "--system", "ab", "abcd"])
    assert code == 0 and json.loads(out) == {"prompt_tokens": 10 + 2 + 10 + 4, "max_context_length": 4096}
    assert run(["health", "--target", fake.target]) == (0, "SERVING\n", "")
    fake.set_readiness(False)
    assert run(["health", "--target", fake.target]) == (ExitCode.NOT_SERVING, "NOT_SERVING\n", "")
    assert run(["health", "--target", fake.target, "--liveness", "--json"])[:2] == (
        0,
        '{"service": "", "status": "SERVING"}\n',
    )
    code, out, _ = run(["health", "--target", fake.target, "--wait", "0.3"])
    assert (code, out) == (ExitCode.NOT_SERVING, "NOT_SERVING\n")


def test_api_key_from_environment(fake: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPTOSS_API_KEY", "sk-env")
    monkeypatch.setenv("GPTOSS_TARGET", fake.target)
    assert run(["models"])[0] == 0
    assert fake.servicer.metadata[0]["authorization"] == "Bearer sk-env"


def test_repl_keeps_history_and_resets(fake: FakeServer) -> None:
    fake.servicer.generate_script = [
        Reply([content("one"), done()]),
        Reply([content("two"), done()]),
        Reply([content("three"), done()]),
    ]
    code, out, err = run(
        ["chat", "--target", fake.target, "--system", "sys"],
        tty=True,
        lines=["first", "", "second", "/reset", "third"],
    )
    assert code == ExitCode.OK
    assert out == "one\ntwo\nthree\n"
    assert "[history cleared]" in err
    first, second, third = ([m.content for m in r.messages] for r in fake.servicer.requests)
    assert first == ["sys", "first"]
    assert second == ["sys", "first", "one", "second"]
    assert third == ["sys", "third"]


def test_repl_reports_errors_and_continues(fake: FakeServer) -> None:
    fake.servicer.generate_script = [
        Fail(grpc.StatusCode.INVALID_ARGUMENT, "nope"),
        Reply([content("fine"), done()]),
    ]
    code, out, err = run(
        ["chat", "--target", fake.target, "--no-color"], tty=True, lines=["a", "b", "/exit", "c"]
    )
    assert code == ExitCode.OK and out == "fine\n" and "gptoss: INVALID_ARGUMENT: nope" in err
    assert [m.content for m in fake.servicer.requests[1].messages] == ["b"]  # the failed turn left no history
    assert len(fake.servicer.requests) == 2  # nothing after /exit


@pytest.mark.parametrize(
    ("argv", "stdin", "message"),
    [
        (["chat"], "", "no prompt"),
        (["chat", "   "], "", "PROMPT is empty"),
        (["count-tokens"], "  \n", "no prompt"),
        (["chat", "--tools", "/nonexistent/tools.json", "hi"], "", "cannot read"),
        (["chat", "--cert", "c.pem", "hi"], "", "--key"),
        (["health", "--ca-cert", "/nonexistent.pem"], "", "cannot read"),
    ],
)
def test_usage_errors_exit_2_without_calling_the_server(
    fake: FakeServer, argv: list[str], stdin: str, message: str
) -> None:
    code, _, err = run([*argv, "--target", fake.target], stdin=stdin)
    assert code == ExitCode.USAGE and message in err
    assert fake.servicer.requests == []


def test_bad_tools_file_is_a_usage_error(fake: FakeServer, tmp_path: Path) -> None:
    bad = tmp_path / "tools.json"
    bad.write_text('[{"description": "no name"}]')
    code, _, err = run(["chat", "--target", fake.target, "--tools", str(bad), "hi"])
    assert code == ExitCode.USAGE and "name" in err


@pytest.mark.parametrize(
    "argv", [[], ["chat", "--max-tokens", "0"], ["chat", "--temperature", "hot"], ["nope"]]
)
def test_argparse_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == ExitCode.USAGE
    assert "error:" in capsys.readouterr().err
