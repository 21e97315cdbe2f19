"""The CLI's contract with its users: flags in both places, one exit code per status, explain-error, help.

In-process against the fake server (tests/clients/test_e2e_cli.py runs the installed script).
"""

from __future__ import annotations

import argparse
import base64
import json
import re

import grpc
import pytest
from gptoss.cli.exit_codes import STATUS_EXIT_CODES, ExitCode
from gptoss.cli.parser import build_parser

from tests.clients.e2e_support import REPO
from tests.clients.fake_service import Fail, FakeServer
from tests.clients.test_cli_fake import run

NOT_FOUND = Fail(
    grpc.StatusCode.NOT_FOUND, "model 'nope' is not served", "MODEL_NOT_FOUND", {"param": "model"}
)


def encoded(failure: Fail, *, pad: bool = False) -> str:
    raw = failure.details()
    assert raw is not None
    text = base64.b64encode(raw).decode()
    return text if pad else text.rstrip("=")


@pytest.mark.parametrize("where", ["before", "after"])
def test_connection_flags_work_before_and_after_the_subcommand(fake: FakeServer, where: str) -> None:
    flags = ["--target", fake.target, "--api-key", "sk-x", "--timeout", "5"]
    argv = [*flags, "models"] if where == "before" else ["models", *flags]
    code, out, err = run(argv)
    assert code == 0, err
    assert "model_id: fake-model" in out and fake.servicer.metadata[0]["authorization"] == "Bearer sk-x"


def test_a_flag_after_the_subcommand_wins() -> None:
    args = build_parser().parse_args(["--target", "a:1", "--no-color", "health", "--target", "b:2"])
    assert (args.target, args.no_color) == ("b:2", True)
    assert build_parser().parse_args(["health"]).timeout is None  # defaults come from the main parser


def test_every_grpc_status_has_its_documented_exit_code() -> None:
    assert set(STATUS_EXIT_CODES) == set(grpc.StatusCode)
    readme = (REPO / "clients/python/README.md").read_text()
    for status, exit_code in STATUS_EXIT_CODES.items():
        assert re.search(rf"\| `{status.name}` \| {exit_code.value} \|", readme), (
            f"README lacks {status.name}"
        )
    for exit_code in ExitCode:
        assert f"{exit_code.value} {exit_code.name.lower().replace('_', ' ')}" in readme


def test_not_found_exits_with_its_own_code(fake: FakeServer) -> None:
    fake.servicer.generate_script = [NOT_FOUND]
    code, out, err = run(["chat", "--target", fake.target, "--model", "nope", "hi"])
    assert (code, out) == (ExitCode.NOT_FOUND, "")
    assert "not served" in err and "gptoss models" in err


def test_explain_error_decodes_the_trailer_in_every_spelling() -> None:
    spellings = [
        encoded(NOT_FOUND),
        encoded(NOT_FOUND, pad=True),
        f"grpc-status-details-bin: {encoded(NOT_FOUND)}",
        f"< Grpc-Status-Details-Bin: {encoded(NOT_FOUND)}\n",  # as `buf curl -v` prints it
        base64.urlsafe_b64encode(NOT_FOUND.details() or b"").decode(),
    ]
    for text in spellings:
        code, out, err = run(["explain-error", "--json"], stdin=text)
        assert code == 0, (text, err)
        data = json.loads(out)
        assert data == {
            "code": "NOT_FOUND",
            "message": "model 'nope' is not served",
            "reason": "MODEL_NOT_FOUND",
            "domain": "gptoss.v1",
            "metadata": {"param": "model"},
            "exit_code": ExitCode.NOT_FOUND,
        }
    code, out, _ = run(["explain-error", encoded(NOT_FOUND)])
    assert code == 0 and "reason: MODEL_NOT_FOUND\n" in out and "metadata.param: model\n" in out


def test_the_readme_explain_error_example_prints_what_it_shows() -> None:
    readme = (REPO / "clients/python/README.md").read_text()
    example = re.search(r"```bash\ngptoss explain-error (\S+)\n```\n```text\n(.*?)```", readme, re.S)
    assert example, "README lost its explain-error example"
    assert run(["explain-error", example.group(1)]) == (0, example.group(2), "")


@pytest.mark.parametrize(
    ("argv", "stdin", "message"),
    [
        (["explain-error"], "", "no details"),
        (["explain-error", "not*base64"], "", "not base64"),
        (["explain-error", base64.b64encode(b"\xff\x00garbage").decode()], "", "google.rpc.Status"),
    ],
)
def test_explain_error_refuses_what_it_cannot_decode(argv: list[str], stdin: str, message: str) -> None:
    code, out, err = run(argv, stdin=stdin)
    assert (code, out) == (ExitCode.USAGE, "") and message in err


def _actions(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.Action]]:
    found: list[tuple[str, argparse.Action]] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += [(f"{name} {flag}", a) for flag, a in _actions(sub)]
        else:
            found.append((parser.prog, action))
    return found


def test_every_flag_has_a_help_text() -> None:
    missing = [
        f"{where} {'/'.join(action.option_strings) or action.dest}"
        for where, action in _actions(build_parser())
        if not action.help or action.help == argparse.SUPPRESS
    ]
    assert missing == []
