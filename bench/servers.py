"""The servers under test as child processes: our service, our gateway, `vllm serve`.

Each runs in its own session (setsid), so stopping it takes its engine processes along, and a
server started detached outlives the command that started it (the GPU machine's calls).
Every side is built from the same `Settings`, so all engines get identical engine arguments.
"Ready" is the product's own probe and wait loop (service.probes), as for the supervisor.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from service.config import REPO_ROOT, Settings
from service.engine import engine_kwargs
from service.probes import free_port, grpc_serving, http_ok, wait_ready


def _pythonpath() -> str:
    """The repo and the client package first, whatever the caller's PYTHONPATH holds after them."""
    parts = [str(REPO_ROOT), str(REPO_ROOT / "clients" / "python" / "src")]
    if os.environ.get("PYTHONPATH"):
        parts.append(os.environ["PYTHONPATH"])
    return os.pathsep.join(parts)


class Server:
    """One child process (and its process group) with its log file."""

    def __init__(self, name: str, argv: list[str], env: Mapping[str, str], log_path: Path) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log:
            log.write(f"$ {' '.join(argv)}\n".encode())
            self.process = subprocess.Popen(
                argv,
                cwd=REPO_ROOT,
                env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": _pythonpath(), **env},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.pid = self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 60.0) -> None:
        stop_group(self.pid, timeout, self.process)


def is_server(pid: int) -> bool:
    """Whether pid is (still) one of the servers this harness starts: a stale pidfile must never stop
    a stranger that got the same pid."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return False
    return any(
        marker in cmdline
        for marker in (b"-m service", b"-m gateway", b"vllm.entrypoints.openai", b"bench.vllm_cli", b"-m smg")
    )


def stop_group(pgid: int, timeout: float = 60.0, process: subprocess.Popen[bytes] | None = None) -> None:
    """SIGTERM to a whole process group (leader and engine processes), SIGKILL what is left after the
    timeout, and wait until the group is gone (GPU memory is free only then)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is None:
            time.sleep(0.2)
            continue
        if not _group_alive(pgid):
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    if process is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(10)
    deadline = time.monotonic() + 15
    while _group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.2)


def frontend_pids(pgid: int, name: str) -> dict[str, int]:
    """The API server processes of a `vllm serve --api-server-count N` group (`name:pid`), by their
    process title (`VLLM::ApiServer_i`), not the engine core, its workers or helpers: CPU per token
    then compares frontends, not engines."""
    found: dict[str, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            comm, rest = stat.read_text().rsplit(")", 1)
        except OSError:
            continue
        fields = rest.split()
        if int(fields[2]) != pgid or int(stat.parent.name) == pgid:  # field 5: process group
            continue
        title = comm.split("(", 1)[1]
        if "apiserver" in title.lower():  # comm holds 15 characters of the title
            found[f"{name}:{stat.parent.name}"] = int(stat.parent.name)
    return found


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def wait_grpc_ready(server: Server, target: str, timeout: float, service: str | None = None) -> float:
    """Seconds until `server` answers readiness SERVING on `target` (our readiness service, or
    `service`: "" is the whole server, as vLLM's gRPC server reports it); NotReady if it exits first."""
    return wait_ready(
        lambda: grpc_serving(target) if service is None else grpc_serving(target, service),
        what=f"{server.name} on {target}",
        timeout=timeout,
        alive=server.alive,
        describe=server.tail,
    )


def wait_http_ready(server: Server, url: str, timeout: float) -> float:
    return wait_ready(
        lambda: http_ok(url),
        what=f"{server.name} at {url}",
        timeout=timeout,
        alive=server.alive,
        describe=server.tail,
    )


def wait_url_of_pid(url: str, pid: int, timeout: float) -> None:
    """Wait for a server this process did not start (a pid from `bench serve`) to answer `url`."""
    wait_ready(
        lambda: http_ok(url), what=f"pid {pid} at {url}", timeout=timeout, alive=lambda: _group_alive(pid)
    )


def _settings_env(profile: str, overrides: Mapping[str, Any]) -> dict[str, str]:
    # Every frontend gets the same output-length rule: ignore_eos, which GPU profiles refuse by default.
    env = {"GPTOSS_PROFILE": profile, "GPTOSS_IGNORE_EOS_CALLERS": "*"}
    for key, value in overrides.items():
        env[f"GPTOSS_{key.upper()}"] = json.dumps(value) if isinstance(value, dict | list) else str(value)
    return env


def start_service(profile: str, overrides: Mapping[str, Any], port: int, log_path: Path) -> Server:
    """`python -m service` with the bench's settings (as GPTOSS_* env: CLI flags would win over them)."""
    argv = [sys.executable, "-m", "service", "--port", str(port)]
    return Server("service", argv, _settings_env(profile, overrides), log_path)


def start_gateway(backend: str, port: int, log_path: Path) -> Server:
    argv = [
        sys.executable,
        "-m",
        "gateway",
        "--backend",
        backend,
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    return Server("gateway", argv, {}, log_path)


def vllm_serve_argv(settings: Settings, port: int, api_servers: int = 0, grpc: bool = False) -> list[str]:
    """`vllm serve` with exactly our engine arguments, except that it loads the tokenizer (chat needs it).

    `api_servers` N > 0 (N API server processes on one engine) and `grpc` (vLLM's gRPC server, SMG's
    worker) need vLLM's CLI (bench.vllm_cli): the OpenAI module entry ignores `--api-server-count`."""
    kwargs = engine_kwargs(settings)
    kwargs.pop("skip_tokenizer_init", None)
    if kwargs.pop("disable_log_stats", False):
        kwargs["disable_log_stats"] = True
    argv = [sys.executable, "-m"]
    if api_servers or grpc:
        argv += ["bench.vllm_cli", "serve", str(kwargs.pop("model"))]
        argv += ["--api-server-count", str(api_servers)] if api_servers else ["--grpc"]
    else:
        argv.append("vllm.entrypoints.openai.api_server")
    argv += ["--host", "127.0.0.1", "--port", str(port)]
    for key, value in kwargs.items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            argv.append(flag if value else "--no-" + key.replace("_", "-"))
        elif isinstance(value, list):
            argv += [flag, *map(str, value)]
        else:
            argv += [flag, str(value)]
    return argv


def start_vllm_serve(settings: Settings, port: int, log_path: Path, api_servers: int = 0) -> Server:
    name = f"vllm-serve-api{api_servers}" if api_servers else "vllm-serve"
    return Server(name, vllm_serve_argv(settings, port, api_servers), dict(settings.engine_env), log_path)


def start_vllm_grpc(settings: Settings, port: int, log_path: Path) -> Server:
    """vLLM's own gRPC server (SMG's worker protocol) on the same engine arguments."""
    return Server(
        "vllm-grpc", vllm_serve_argv(settings, port, grpc=True), dict(settings.engine_env), log_path
    )


def start_smg(model_dir: str, worker_port: int, port: int, log_path: Path) -> Server:
    """The SMG router (Rust: Harmony, tokenizer, OpenAI HTTP) in front of vLLM's gRPC server. It reads
    o200k_base from TIKTOKEN_ENCODINGS_BASE (offline), written here by our tokenizer recipe."""
    from service.harmony.tokenizer_files import write_o200k_base

    encodings = REPO_ROOT / ".tmp" / "tiktoken"
    encodings.mkdir(parents=True, exist_ok=True)
    if not (encodings / "o200k_base.tiktoken").exists():
        write_o200k_base(encodings / "o200k_base.tiktoken")
    argv = [sys.executable, "-m", "smg", "launch", "--worker-urls", f"grpc://127.0.0.1:{worker_port}"]
    argv += ["--model-path", model_dir, "--host", "127.0.0.1", "--port", str(port), "--policy", "round_robin"]
    # Its metrics server binds 0.0.0.0:29000 unless told otherwise: loopback, a free port.
    argv += ["--prometheus-host", "127.0.0.1", "--prometheus-port", str(free_port())]
    return Server("smg", argv, {"TIKTOKEN_ENCODINGS_BASE": str(encodings)}, log_path)
