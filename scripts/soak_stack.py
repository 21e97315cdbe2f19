"""The stack under soak: `python -m service.stack` (the supervisor `make run` and the container use)
on free loopback ports, and its processes found by role for RSS sampling.

Starting through the supervisor means the soak drains what production drains: one SIGTERM, the
service first, then the gateway, one exit status.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import psutil
from prometheus_client.parser import text_string_to_metric_families

from service.probes import free_port, http_ok, wait_ready

ROOT = Path(__file__).resolve().parent.parent
MiB = 1 << 20


class SoakStack:
    def __init__(self, profile: str = "cpu-tiny") -> None:
        self.grpc_port, self.http_port, self.metrics_port = free_port(), free_port(), free_port()
        self.command = [sys.executable, "-m", "service.stack", "--profile", profile]
        self.command += ["--grpc-port", str(self.grpc_port), "--http-port", str(self.http_port)]
        self.env = {**os.environ, "GPTOSS_METRICS_PORT": str(self.metrics_port)}
        self.proc: subprocess.Popen[bytes] | None = None
        self._seen: dict[int, psutil.Process] = {}

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def start(self, timeout: float = 420.0) -> SoakStack:
        """Until the gateway's /ready answers 200 (the engine is serving behind it)."""
        self.proc = subprocess.Popen(self.command, cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL)
        wait_ready(
            lambda: http_ok(self.gateway_url + "/ready"),
            what="the stack",
            timeout=timeout,
            alive=lambda: self.proc is not None and self.proc.poll() is None,
        )
        return self

    def rss_mib(self) -> dict[str, float]:
        """RSS by role: the service process (server), vLLM's EngineCore and Worker, the gateway."""
        sizes: dict[str, float] = {}
        for child in self._descendants():
            with contextlib.suppress(psutil.Error):
                cmdline = " ".join(child.cmdline())
                if "-m service" in cmdline and "service.stack" not in cmdline:
                    role = "server"
                elif "-m gateway" in cmdline:
                    role = "gateway"
                else:
                    role = child.name().removeprefix("VLLM::")
                sizes[role] = sizes.get(role, 0.0) + child.memory_info().rss / MiB
        return sizes

    def metric(self, name: str) -> float:
        """Sum of every sample of `name` on the service's Prometheus endpoint."""
        with urllib.request.urlopen(self.metrics_url, timeout=5) as response:
            text = response.read().decode()
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == name
        )

    def drain(self, timeout: float = 180.0) -> int:
        """SIGTERM the supervisor, as an orchestrator would; its exit status."""
        assert self.proc is not None
        self._descendants()
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        """Whatever state it is in: the supervisor and every process seen under it (by pid and start time)."""
        self._descendants()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        for child in self._seen.values():
            with contextlib.suppress(psutil.Error):
                if child.is_running():
                    child.kill()

    def _descendants(self) -> list[psutil.Process]:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(psutil.Error):
                for child in psutil.Process(self.proc.pid).children(recursive=True):
                    self._seen.setdefault(child.pid, child)
        return [child for child in self._seen.values() if _running(child)]


def _running(process: psutil.Process) -> bool:
    with contextlib.suppress(psutil.Error):
        return bool(process.is_running())
    return False
