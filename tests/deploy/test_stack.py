"""The launcher: deploy/docker/gptoss-stack execs `python -m service.stack` (the supervisor `make run`
uses). Its settings resolution, and its stop order and crash handling for real, with stub children."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from service.probes import free_port
from service.stack import parse_args, resolve, supervisor
from tests.deploy.helpers import DOCKER, REPO, run, tool

STACK = DOCKER / "gptoss-stack"


def test_flags_win_over_env_and_reach_the_children_as_env() -> None:
    args = parse_args(
        ["--profile", "cpu-tiny", "--host", "0.0.0.0", "--grpc-port", "6000", "--http-port", "6001"]
    )
    config = resolve(args, {"GPTOSS_PORT": "7000", "GPTOSS_GATEWAY_PORT": "7001"})
    assert (config.grpc_port, config.http_port) == (6000, 6001)
    assert config.child_env == {
        "GPTOSS_PROFILE": "cpu-tiny",
        "GPTOSS_HOST": "0.0.0.0",
        "GPTOSS_GATEWAY_HOST": "0.0.0.0",
        "GPTOSS_PORT": "6000",
        "GPTOSS_GATEWAY_PORT": "6001",
        "GPTOSS_GATEWAY_BACKENDS": "127.0.0.1:6000",  # a wildcard bind is reached on loopback
    }
    assert config.gateway_url == "http://127.0.0.1:6001"


def test_env_alone_is_read_as_the_children_read_it_and_left_to_them() -> None:
    env = {"GPTOSS_PORT": "7000", "GPTOSS_GATEWAY_PORT": "7001", "GPTOSS_GATEWAY_BACKENDS": "10.0.0.1:7000"}
    config = resolve(parse_args([]), env)
    assert (config.grpc_target, config.gateway_url) == ("127.0.0.1:7000", "http://127.0.0.1:7001")
    assert config.child_env == {}, "nothing is re-set: the children read their own env (and settings file)"


def test_defaults_match_the_service_and_gateway_defaults() -> None:
    from gateway import GatewaySettings
    from service.config import Settings

    config = resolve(parse_args([]), {})
    gateway = GatewaySettings()
    service = Settings(profile="cpu-tiny")
    assert (config.service_host, config.grpc_port) == (service.host, service.port)
    assert (config.gateway_host, config.http_port) == (gateway.host, gateway.port)
    assert config.child_env == {"GPTOSS_GATEWAY_BACKENDS": gateway.backends[0]}


def test_the_service_stops_first_and_no_gateway_means_one_child() -> None:
    config = resolve(parse_args([]), {})
    assert [c.name for c in supervisor(config).specs] == ["service", "gateway"]
    assert supervisor(config).stop_order == ["service", "gateway"]
    alone = resolve(parse_args(["--no-gateway"]), {})
    assert [c.name for c in supervisor(alone).specs] == ["service"]


def test_other_flags_reach_the_service_as_they_are() -> None:
    """`make run ARGS="--max-model-len 2048"`: flags the stack does not know are the service's."""
    config = resolve(parse_args(["--profile", "cpu-tiny", "--max-model-len", "2048", "--pro", "x"]), {})
    assert config.service_args == ("--max-model-len", "2048", "--pro", "x"), "no prefix matching"
    service = supervisor(config).specs[0]
    assert list(service.argv[-4:]) == ["--max-model-len", "2048", "--pro", "x"]


# --- gptoss-stack -----------------------------------------------------------------------------------


def test_stack_script_passes_shellcheck() -> None:
    result = run([tool("shellcheck"), "--shell=bash", str(STACK)])
    assert result.returncode == 0, result.stdout


_STUB = """
import http.server, os, signal, sys, threading, time
NAME = {name!r}
def note(event):
    with open(os.environ["STUB_LOG"], "a") as log:
        log.write(f"{{NAME}} {{event}}\\n")
def on_term(*_):
    note("TERM")
    time.sleep(float(os.environ.get("STUB_DRAIN", "0")) if NAME == "service" else 0)
    note("exit")
    sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
note("start")
for key in ("GPTOSS_PROFILE", "GPTOSS_PORT", "GPTOSS_GATEWAY_PORT", "GPTOSS_GATEWAY_BACKENDS"):
    if key in os.environ:
        note(f"{{key}}={{os.environ[key]}}")
if NAME == "gateway" and os.environ.get("STUB_SERVE_READY"):
    class Ready(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/ready" else 404)
            self.end_headers()
        def log_message(self, *args):
            pass
    port = int(os.environ["GPTOSS_GATEWAY_PORT"])
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Ready)
    threading.Thread(target=server.serve_forever, daemon=True).start()
crash_after = os.environ.get("STUB_CRASH_" + NAME.upper())
started = time.monotonic()
while True:
    time.sleep(0.02)
    if crash_after and time.monotonic() - started > float(crash_after):
        note("crash")
        sys.exit(3)
"""
# The stub `service` package runs the stub __main__ but finds every other module (service.stack,
# the supervisor itself) in the real package: only the two children are replaced.
_STUB_SERVICE_INIT = f"__path__.append({str(REPO / 'service')!r})\n"


def start_stack(tmp_path: Path, *args: str, **env: str) -> tuple[subprocess.Popen[str], Path]:
    """gptoss-stack with stub `service` / `gateway` children that log what happens to them."""
    for name in ("service", "gateway"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__main__.py").write_text(_STUB.format(name=name))
    (tmp_path / "service" / "__init__.py").write_text(_STUB_SERVICE_INIT)
    log = tmp_path / "events.log"
    stub_env = {
        **os.environ,
        "GPTOSS_STACK_PYTHON": sys.executable,
        "GPTOSS_GATEWAY_PORT": str(free_port()),  # nothing else may answer the ready probe
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO / "clients" / "python" / "src")]),
        "STUB_LOG": str(log),
    }
    process = subprocess.Popen(
        ["bash", str(STACK), *args],
        cwd=tmp_path,
        env={**stub_env, **env},
        text=True,
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    return process, log


def kill_group(process: subprocess.Popen[str]) -> None:
    """Whatever happened, leave no stub behind (the children run in process groups of their own)."""
    with contextlib.suppress(psutil.Error):
        for child in psutil.Process(process.pid).children(recursive=True):
            with contextlib.suppress(psutil.Error):
                child.kill()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=5)


def events(log: Path) -> list[str]:
    return [e for e in log.read_text().splitlines() if "=" not in e] if log.exists() else []


def wait_for(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_stack_script_only_execs_the_python_supervisor() -> None:
    commands = [line for line in STACK.read_text().splitlines() if line and not line.startswith("#")]
    assert commands == ["set -euo pipefail", 'exec "${GPTOSS_STACK_PYTHON:-python3}" -m service.stack "$@"']


def test_stack_starts_both_at_once_passes_flags_as_env_and_says_when_ready(tmp_path: Path) -> None:
    port = free_port()
    flags = ["--profile", "cpu-tiny", "--grpc-port", "50999", "--http-port", str(port)]
    process, log = start_stack(tmp_path, *flags, STUB_SERVE_READY="1")
    ready = f"[stack] ready: OpenAI API at http://127.0.0.1:{port}/v1 (gRPC at 127.0.0.1:50999)\n"
    try:
        assert process.stdout is not None
        seen = [process.stdout.readline() for _ in range(3)]  # starting, gateway, then ready
        assert seen[-1] == ready, seen
        assert {"service start", "gateway start"} <= set(events(log))
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        kill_group(process)
    lines = log.read_text().splitlines()
    for name in ("service", "gateway"):
        assert f"{name} GPTOSS_PROFILE=cpu-tiny" in lines and f"{name} GPTOSS_PORT=50999" in lines
        assert f"{name} GPTOSS_GATEWAY_BACKENDS=127.0.0.1:50999" in lines


def test_stack_drains_the_service_before_stopping_the_gateway(tmp_path: Path) -> None:
    process, log = start_stack(tmp_path, STUB_DRAIN="0.5")
    try:
        wait_for(lambda: {"service start", "gateway start"} <= set(events(log)))
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        kill_group(process)
    order = [e for e in events(log) if not e.endswith("start")]
    # The gateway keeps relaying in-flight streams until the service has finished draining.
    assert order == ["service TERM", "service exit", "gateway TERM", "gateway exit"]


def test_stack_exits_non_zero_and_stops_the_service_when_the_gateway_dies(tmp_path: Path) -> None:
    process, log = start_stack(tmp_path, STUB_CRASH_GATEWAY="0.3")
    try:
        assert process.wait(timeout=15) == 3
    finally:
        kill_group(process)
    assert events(log)[-3:] == ["gateway crash", "service TERM", "service exit"]


def test_stack_stops_the_gateway_when_the_service_dies(tmp_path: Path) -> None:
    process, log = start_stack(tmp_path, STUB_CRASH_SERVICE="0.3")
    try:
        assert process.wait(timeout=15) == 3
    finally:
        kill_group(process)
    assert events(log)[-3:] == ["service crash", "gateway TERM", "gateway exit"]


def test_a_second_signal_kills_a_service_that_is_still_draining(tmp_path: Path) -> None:
    process, log = start_stack(tmp_path, STUB_DRAIN="60")
    try:
        wait_for(lambda: {"service start", "gateway start"} <= set(events(log)))
        process.send_signal(signal.SIGTERM)
        wait_for(lambda: "service TERM" in events(log))
        started = time.monotonic()
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=15) == 128 + signal.SIGKILL
        assert time.monotonic() - started < 10
    finally:
        kill_group(process)
    assert "service exit" not in events(log) and events(log)[-2:] == ["gateway TERM", "gateway exit"]
