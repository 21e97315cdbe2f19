"""The `gptoss` subcommands; each returns an exit code and raises GptossError / UsageError on failure."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from gptoss.build import build_tool
from gptoss.cli.exit_codes import ExitCode
from gptoss.cli.inputs import UsageError, read_file, read_json, response_format
from gptoss.cli.render import ChatPrinter, Style, color_enabled, completion_json
from gptoss.client import Client
from gptoss.connection import TlsConfig
from gptoss.errors import GptossError, UnavailableError
from gptoss.events import FinishReason
from gptoss.info import ServingStatus
from gptoss.result import Completion, CompletionBuilder

UNARY_TIMEOUT_S = 30.0


@dataclass
class Io:
    """The process's streams, injectable so the commands can be tested in-process."""

    stdin: TextIO
    stdout: TextIO
    stderr: TextIO
    read_line: Callable[[str], str] = field(default=input)


def make_client(args: argparse.Namespace) -> Client:
    """A Client from the connection flags; TLS when any TLS flag is given."""
    if bool(args.cert) != bool(args.key):
        raise UsageError("--cert and --key must be given together (mTLS)")
    tls: TlsConfig | None = None
    if args.tls or args.ca_cert or args.cert or args.server_name:
        tls = TlsConfig(
            root_certificates=read_file(args.ca_cert, "--ca-cert"),
            client_certificate=read_file(args.cert, "--cert"),
            client_key=read_file(args.key, "--key"),
            server_name_override=args.server_name,
        )
    return Client(args.target, api_key=args.api_key, tls=tls, timeout=args.timeout)


def _unary_timeout(args: argparse.Namespace) -> float:
    return float(args.timeout) if args.timeout is not None else UNARY_TIMEOUT_S


def _prompt(args: argparse.Namespace, io: Io) -> str | None:
    """PROMPT, else stdin when piped (or PROMPT is '-'); None means interactive."""
    if args.prompt is not None and args.prompt != "-":
        if not args.prompt.strip():
            raise UsageError("PROMPT is empty")
        return str(args.prompt)
    if args.prompt == "-" or not io.stdin.isatty():
        text = io.stdin.read()
        if not text.strip():
            raise UsageError("no prompt: pass PROMPT, pipe text on stdin, or run `gptoss chat` in a terminal")
        return text
    return None


def _tools(args: argparse.Namespace) -> list[Any] | None:
    if args.tools is None:
        return None
    data = read_json(args.tools, "--tools")
    if isinstance(data, dict) and "tools" in data:
        data = data["tools"]
    if not isinstance(data, list):
        raise UsageError(f"--tools: {args.tools} must hold a JSON list of tools")
    try:
        return [build_tool(tool) for tool in data]
    except (TypeError, ValueError) as exc:
        raise UsageError(f"--tools: {exc}") from None


def _preamble(args: argparse.Namespace) -> list[dict[str, str]]:
    messages = []
    if args.system:
        messages.append({"role": "system", "content": args.system})
    if args.developer:
        messages.append({"role": "developer", "content": args.developer})
    return messages


def _conversation_options(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword options shared by chat and count-tokens (messages excluded); ValueError → usage."""
    return {
        "tools": _tools(args),
        "reasoning_effort": args.reasoning_effort,
        "response_format": response_format(args),
    }


def _chat_options(args: argparse.Namespace) -> dict[str, Any]:
    return {
        **_conversation_options(args),
        "max_tokens": args.max_tokens,
        "temperature": args.temperature,
        "top_p": args.top_p,
        "seed": args.seed,
        "stop": args.stop,
        "model": args.model,
        "max_reasoning_tokens": args.max_reasoning_tokens,
    }


def _turn(
    client: Client, args: argparse.Namespace, messages: list[dict[str, Any]], printer: ChatPrinter
) -> Completion:
    """Stream one turn to the terminal; Ctrl-C closes the stream, which cancels the call."""
    builder = CompletionBuilder()
    stream = client.generate(messages=messages, request_id=args.request_id, **_chat_options(args))
    try:
        with stream:
            for event in stream:
                builder.add(event)
                printer.event(event)
    except KeyboardInterrupt:
        printer.interrupted()
        raise
    return builder.result()


def _turn_exit_code(completion: Completion) -> ExitCode:
    return ExitCode.FAILURE if completion.finish_reason is FinishReason.ERROR else ExitCode.OK


def chat(args: argparse.Namespace, client: Client, io: Io) -> int:
    prompt = _prompt(args, io)
    messages: list[dict[str, Any]] = _preamble(args)
    if prompt is None:
        return _repl(args, client, io, messages)
    messages.append({"role": "user", "content": prompt})
    if args.json:
        completion = client.complete(messages=messages, request_id=args.request_id, **_chat_options(args))
        io.stdout.write(completion_json(completion) + "\n")
        return _turn_exit_code(completion)
    style = Style(color_enabled(io.stderr, args.no_color))
    printer = ChatPrinter(io.stdout, io.stderr, style=style, show_reasoning=not args.hide_reasoning)
    return _turn_exit_code(_turn(client, args, messages, printer))


def _line_editing() -> bool:
    """Arrow keys and history for input() where the platform has readline."""
    try:
        import readline  # noqa: F401
    except ImportError:
        return False
    return True


def _repl(args: argparse.Namespace, client: Client, io: Io, preamble: list[dict[str, Any]]) -> int:
    """Interactive chat: history kept across turns; /reset clears it, /exit or Ctrl-D quits."""
    style = Style(color_enabled(io.stderr, args.no_color))
    printer = ChatPrinter(io.stdout, io.stderr, style=style, show_reasoning=not args.hide_reasoning)
    io.stderr.write(
        style.dim(f"gptoss chat @ {client.target} - /reset clears history, /exit or Ctrl-D quits") + "\n"
    )
    history = list(preamble)
    prompt = style.bold("you> ")
    if io.read_line is input and _line_editing():
        # readline must be told which prompt bytes take no columns, or long lines wrap wrongly.
        prompt = re.sub(r"(\x1b\[[0-9;]*m)", "\x01\\1\x02", prompt)
    while True:
        try:
            line = io.read_line(prompt).strip()
        except EOFError:
            io.stderr.write("\n")
            return ExitCode.OK
        except KeyboardInterrupt:
            io.stderr.write("\n")
            return ExitCode.INTERRUPTED
        if not line:
            continue
        if line in ("/exit", "/quit"):
            return ExitCode.OK
        if line == "/reset":
            history = list(preamble)
            io.stderr.write(style.dim("[history cleared]") + "\n")
            continue
        try:
            completion = _turn(client, args, [*history, {"role": "user", "content": line}], printer)
        except KeyboardInterrupt:
            continue  # the turn was cancelled; it does not enter the history
        except GptossError as exc:
            io.stderr.write(style.error(f"gptoss: {exc}") + "\n")
            continue
        history.append({"role": "user", "content": line})
        # Only the answer goes back: Harmony drops earlier turns' reasoning anyway.
        history.append({"role": "assistant", "content": completion.content})


def models(args: argparse.Namespace, client: Client, io: Io) -> int:
    info = client.model_info(timeout=_unary_timeout(args))
    print_record(dataclasses.asdict(info), args, io)
    return ExitCode.OK


def count_tokens(args: argparse.Namespace, client: Client, io: Io) -> int:
    prompt = _prompt(args, io)
    if prompt is None:
        raise UsageError("no prompt: pass PROMPT or pipe text on stdin")
    messages = [*_preamble(args), {"role": "user", "content": prompt}]
    count = client.count_tokens(
        messages=messages, timeout=_unary_timeout(args), **_conversation_options(args)
    )
    print_record(dataclasses.asdict(count), args, io)
    return ExitCode.OK


def print_record(data: dict[str, object], args: argparse.Namespace, io: Io) -> None:
    """One result: a JSON object with --json, else `key: value` lines."""
    if args.json:
        io.stdout.write(json.dumps(data) + "\n")
    else:
        io.stdout.writelines(f"{key}: {value}\n" for key, value in data.items())


def health(args: argparse.Namespace, client: Client, io: Io) -> int:
    """Exit 0 when SERVING, 8 when the server answers otherwise."""
    service = "" if args.liveness else args.service
    if args.wait:
        # Not ready in time is not an error here: the check below reports the status (or the failure).
        with contextlib.suppress(UnavailableError):
            client.wait_until_ready(args.wait, service=service)
    status = client.health(service, timeout=_unary_timeout(args))
    if args.json:
        io.stdout.write(json.dumps({"service": service, "status": status.value}) + "\n")
    else:
        io.stdout.write(f"{status.value}\n")
    return ExitCode.OK if status is ServingStatus.SERVING else ExitCode.NOT_SERVING


COMMANDS: dict[str, Callable[[argparse.Namespace, Client, Io], int]] = {
    "chat": chat,
    "models": models,
    "count-tokens": count_tokens,
    "health": health,
}
