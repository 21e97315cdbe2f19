"""`python -m service` as a real subprocess (the production entry point): start it on free loopback
ports, wait for readiness, read its JSON logs, and always kill it and every process it spawned.

Used by the drain and engine-death tests. Readiness is the product's own probe and wait loop
(service.probes), so a test waits for exactly what the supervisor and bench wait for.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import psutil
from gptoss.contract import READINESS_SERVICE
from grpc_health.v1 import health_pb2, health_pb2_grpc

from service.probes import wait_ready
from tests.support.harmony_tiny import ensure_harmony_tiny

ROOT = Path(__file__).resolve().parents[2]
_LISTENING = re.compile(r"gRPC listening on ([\d.]+):(\d+)")
_METRICS = re.compile(r"Prometheus metrics on http://([\d.]+):(\d+)/metrics")


class ServiceProcess:
    """One `python -m service --profile cpu-tiny --port 0 --metrics-port 0 ...` subprocess."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.command = [
            sys.executable,
            "-m",
            "service",
            "--profile",
            "cpu-tiny",
            "--port",
            "0",
            "--metrics-port",
            "0",
            *args,
        ]
        self._env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[str] | None = None
        self.lines: list[str] = []
        self.host = "127.0.0.1"
        self.port = 0
        self.metrics_port = 0
        self._descendants: dict[int, psutil.Process] = {}
        self._reader: threading.Thread | None = None
        self._lock = threading.Lock()

    # -- start / stop -------------------------------------------------------------------------

    def start(self, ready_timeout: float = 420.0) -> ServiceProcess:
        ensure_harmony_tiny()  # the cpu-tiny profile serves it
        self.proc = subprocess.Popen(
            self.command,
            cwd=ROOT,
            env=self._env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            bufsize=1,
        )
        self._reader = threading.Thread(target=self._read, name="service-log", daemon=True)
        self._reader.start()
        wait_ready(
            lambda: bool(self.port) and self.readiness() == health_pb2.HealthCheckResponse.SERVING,
            what=f"service {' '.join(self.command[3:])}",
            timeout=ready_timeout,
            alive=lambda: self.proc is not None and self.proc.poll() is None,
            describe=self.log_tail,
            interval=0.2,
        )
        self.remember_descendants()
        return self

    def stop(self) -> None:
        """Kill the server and everything it started (by pid), whatever state they are in."""
        self.remember_descendants()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(10)
        for child in list(self._descendants.values()):
            with contextlib.suppress(psutil.Error):
                if child.is_running():  # same pid *and* start time: never a recycled pid
                    child.kill()
        gone_by = time.monotonic() + 10
        for child in list(self._descendants.values()):
            with contextlib.suppress(psutil.Error):
                child.wait(max(0.1, gone_by - time.monotonic()))
        if self._reader is not None:
            self._reader.join(5)

    def __enter__(self) -> ServiceProcess:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # -- inspection ---------------------------------------------------------------------------

    @property
    def target(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def remember_descendants(self) -> list[psutil.Process]:
        """Record the process tree now (children get reparented if the server dies first)."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(psutil.Error):
                for child in psutil.Process(self.proc.pid).children(recursive=True):
                    self._descendants.setdefault(child.pid, child)
        return list(self._descendants.values())

    def engine_core(self) -> psutil.Process:
        """vLLM's engine-core child process (process title `VLLM::EngineCore`)."""
        for child in self.remember_descendants():
            with contextlib.suppress(psutil.Error):
                if "EngineCore" in child.name() or "EngineCore" in " ".join(child.cmdline()):
                    return child
        raise LookupError("no EngineCore process under the service")

    def tree_rss(self) -> dict[str, int]:
        """RSS in bytes of the server process and of each live descendant, by role."""
        sizes: dict[str, int] = {}
        if self.proc is None:
            return sizes
        with contextlib.suppress(psutil.Error):
            sizes["server"] = psutil.Process(self.proc.pid).memory_info().rss
        for child in self.remember_descendants():
            with contextlib.suppress(psutil.Error):
                if child.is_running():
                    name = child.name().removeprefix("VLLM::") or str(child.pid)
                    sizes[name] = sizes.get(name, 0) + child.memory_info().rss
        return sizes

    def readiness(self, service: str = READINESS_SERVICE, timeout: float = 2.0) -> int | None:
        """The health status for `service`, or None if the server does not answer."""
        try:
            with grpc.insecure_channel(self.target) as channel:
                request = health_pb2.HealthCheckRequest(service=service)
                return int(health_pb2_grpc.HealthStub(channel).Check(request, timeout=timeout).status)
        except grpc.RpcError:
            return None

    def wait_exit(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def terminate(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)

    def log_text(self) -> str:
        with self._lock:
            return "".join(self.lines)

    def log_tail(self, lines: int = 40) -> str:
        with self._lock:
            return "".join(self.lines[-lines:])

    def json_logs(self) -> list[dict[str, object]]:
        """The service's own structured log records (vLLM's plain-text lines are skipped)."""
        records = []
        for line in self.log_text().splitlines():
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    records.append(json.loads(line))
        return records

    # -- internals ----------------------------------------------------------------------------

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._lock:
                self.lines.append(line)
            if not self.port and (found := _LISTENING.search(line)):
                self.host, self.port = found.group(1), int(found.group(2))
            if not self.metrics_port and (found := _METRICS.search(line)):
                self.metrics_port = int(found.group(2))


@contextlib.contextmanager
def running_service(*args: str, ready_timeout: float = 420.0) -> Iterator[ServiceProcess]:
    service = ServiceProcess(*args)
    try:
        yield service.start(ready_timeout)
    finally:
        service.stop()
