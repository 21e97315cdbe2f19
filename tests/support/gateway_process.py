"""`python -m gateway` as a real subprocess (the production entry point) on a loopback port: start it,
wait until a route answers 200, keep its output in a log file, and always stop it.

For tests that need the process itself (signals, listening sockets, uvloop); the in-thread
GatewayThread is quicker when they do not.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

from service.probes import free_port, http_ok, wait_ready

ROOT = Path(__file__).resolve().parents[2]


class GatewayProcess:
    def __init__(
        self,
        backends: Sequence[str],
        *args: str,
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        log_path: Path | None = None,
    ) -> None:
        self.port = free_port() if port is None else port
        self.command = [sys.executable, "-m", "gateway", "--port", str(self.port), *args]
        for backend in backends:
            self.command += ["--backend", backend]
        if not any(a.startswith(("--data-dir", "--store-url", "--no-store")) for a in args):
            self._data_dir = tempfile.TemporaryDirectory(prefix="gateway-store-")  # its own SQLite store
            self.command += ["--data-dir", self._data_dir.name]
        self._env = dict(env) if env is not None else None
        self._log_path = log_path
        self._log: IO[bytes] | None = None
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, ready_path: str | None = "/ready", timeout: float = 60.0) -> GatewayProcess:
        """Spawn; unless ready_path is None, wait until GET ready_path answers 200."""
        if self._log_path is None:
            handle, name = tempfile.mkstemp(prefix="gateway-", suffix=".log")
            os.close(handle)
            self._log_path = Path(name)
        self._log = self._log_path.open("wb")
        self.proc = subprocess.Popen(
            self.command,
            cwd=ROOT,
            env=self._env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        if ready_path is not None:
            wait_ready(
                lambda: http_ok(self.url + ready_path),
                what=f"gateway at {self.url}",
                timeout=timeout,
                alive=self.alive,
                describe=self.log_tail,
                interval=0.1,
            )
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, chars: int = 2000) -> str:
        if self._log_path is None or not self._log_path.exists():
            return ""
        return self._log_path.read_text(errors="replace")[-chars:]

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, then SIGKILL after `timeout`; the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        code = self.proc.wait(10)
        if self._log is not None:
            self._log.close()
        return code

    def __enter__(self) -> GatewayProcess:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
