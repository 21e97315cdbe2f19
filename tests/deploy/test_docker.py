"""deploy/docker: the Dockerfile (hadolint + structure) and the health-check script (for real); the
launcher (gptoss-stack) is in test_stack.py."""

from __future__ import annotations

import http.server
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from gptoss.contract import READINESS_SERVICE
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from tests.deploy.helpers import (
    DOCKER,
    IMAGE_UID,
    REPO,
    dockerfile_args,
    dockerfile_stages,
    run,
    tool,
)

HEALTHCHECK = DOCKER / "gptoss-healthcheck"
STACK = DOCKER / "gptoss-stack"


# --- Dockerfile -----------------------------------------------------------------------------------


def test_hadolint_passes_with_every_rule_on() -> None:
    result = run([tool("hadolint"), "--config", str(DOCKER / ".hadolint.yaml"), str(DOCKER / "Dockerfile")])
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_config_is_the_one_used_and_strict(tmp_path: Path) -> None:
    """The same invocation fails a Dockerfile with the usual mistakes and an untrusted registry."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM quay.io/foo/bar:latest\nRUN pip install requests\nUSER root\n")
    result = run([tool("hadolint"), "--config", str(DOCKER / ".hadolint.yaml"), "-f", "json", str(bad)])
    assert result.returncode != 0
    codes = set(re.findall(r'"code":"(DL\d+)"', result.stdout))
    assert {"DL3007", "DL3013", "DL3002", "DL3026"} <= codes, result.stdout


def test_stages_and_base_images() -> None:
    stages = dockerfile_stages()
    assert list(stages) == ["", "gateway", "service"], "service must stay the last (default) stage"
    args = dockerfile_args()
    assert args["SERVICE_BASE"] == "vllm/vllm-openai:v0.26.0"
    assert args["GATEWAY_BASE"].startswith("python:3.11-")
    assert stages["service"][0][1].startswith("${SERVICE_BASE}")
    assert stages["gateway"][0][1].startswith("${GATEWAY_BASE}")


@pytest.mark.parametrize("stage", ["gateway", "service"])
def test_each_image_runs_as_the_non_root_uid(stage: str) -> None:
    instructions = dockerfile_stages()[stage]
    users = [rest for keyword, rest in instructions if keyword == "USER"]
    assert users and users[-1] == f"{IMAGE_UID}:{IMAGE_UID}"
    created = " ".join(rest for keyword, rest in instructions if keyword == "RUN")
    assert f"useradd --uid {IMAGE_UID} --gid {IMAGE_UID}" in created


@pytest.mark.parametrize(
    ("stage", "check", "ports"),
    [
        ("service", ["grpc"], {"50051", "9400"}),  # the default service is readiness
        ("gateway", ["http", "--path", "/health"], {"8000"}),
    ],
)
def test_health_checks_and_ports(stage: str, check: list[str], ports: set[str]) -> None:
    instructions = dict(dockerfile_stages()[stage])
    options, _, command = instructions["HEALTHCHECK"].partition(" CMD ")
    assert json.loads(command) == ["gptoss-healthcheck", *check]
    assert "--start-period=" in options
    assert set(instructions["EXPOSE"].split()) == ports
    env = instructions["ENV"]
    host_var = "GPTOSS_HOST" if stage == "service" else "GPTOSS_GATEWAY_HOST"
    assert f"{host_var}=0.0.0.0" in env, "inside a container the listener must not be loopback"


def test_service_stage_resets_the_vllm_entrypoint_and_runs_the_service() -> None:
    instructions = dockerfile_stages()["service"]
    assert ("ENTRYPOINT", "[]") in instructions
    assert instructions[-1] == ("CMD", '["python3", "-m", "service"]')
    assert dict(dockerfile_stages()["gateway"])["CMD"] == '["python3", "-m", "gateway"]'


def test_copied_sources_exist_and_pass_the_dockerignore() -> None:
    ignore = [line for line in (DOCKER / "Dockerfile.dockerignore").read_text().splitlines() if line]
    ignore = [line for line in ignore if not line.startswith("#")]
    assert ignore[0] == "*", "the build context must be deny-by-default"
    allowed = [line[1:].rstrip("/") for line in ignore if line.startswith("!")]
    sources = []
    for stage in ("gateway", "service"):
        for keyword, rest in dockerfile_stages()[stage]:
            if keyword == "COPY" and "--from" not in rest:
                words = [w for w in rest.split() if not w.startswith("--")]
                sources += words[:-1]
    assert sources
    for source in sources:
        assert (REPO / source).exists(), source
        assert any(source.rstrip("/") == a or source.startswith(a + "/") for a in allowed), source


# --- gptoss-healthcheck ----------------------------------------------------------------------------


def test_healthcheck_script_is_ruff_clean() -> None:
    for args in (["check"], ["format", "--check"]):
        result = run([tool("ruff"), *args, str(HEALTHCHECK)], cwd=REPO)
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture
def health_server() -> Iterator[tuple[int, health.HealthServicer]]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield port, servicer
    server.stop(None)


def healthcheck(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, str(HEALTHCHECK), *args], env={**os.environ, **(env or {})})


def test_grpc_healthcheck_follows_the_serving_status(
    health_server: tuple[int, health.HealthServicer],
) -> None:
    port, servicer = health_server
    serving, not_serving = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING
    servicer.set("", serving)
    servicer.set(READINESS_SERVICE, not_serving)
    assert healthcheck("grpc", "--port", str(port), "--service", "").returncode == 0
    # Default service = readiness; the port comes from GPTOSS_PORT as in the image.
    assert healthcheck("grpc", env={"GPTOSS_PORT": str(port)}).returncode == 1
    servicer.set(READINESS_SERVICE, serving)
    assert healthcheck("grpc", env={"GPTOSS_PORT": str(port)}).returncode == 0
    unknown = healthcheck("grpc", "--port", str(port), "--service", "no.such.Service")
    assert unknown.returncode == 1 and "NOT_FOUND" in unknown.stderr


def test_grpc_healthcheck_fails_fast_without_a_server() -> None:
    started = time.monotonic()
    result = healthcheck("grpc", "--port", "1", "--timeout", "2")
    assert result.returncode == 1 and "UNAVAILABLE" in result.stderr
    assert time.monotonic() - started < 10


def test_http_healthcheck() -> None:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/health" else 503)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = str(server.server_address[1])
        assert healthcheck("http", env={"GPTOSS_GATEWAY_PORT": port}).returncode == 0
        assert healthcheck("http", "--port", port, "--path", "/ready").returncode == 1
    finally:
        server.shutdown()
    assert healthcheck("http", "--port", port, "--timeout", "1").returncode == 1
