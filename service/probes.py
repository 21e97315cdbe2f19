"""Is a server up yet: the readiness probes and the one wait loop used by every launcher.

The supervisor (`service.stack`), bench's server harness and the soak all start servers and wait
for them; they share these so "ready" means the same thing everywhere: grpc.health.v1 SERVING for
the readiness service name, or HTTP 200 on a gateway route.
"""

from __future__ import annotations

import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable

from gptoss.contract import READINESS_SERVICE


class NotReady(RuntimeError):
    """The server exited, or did not get ready in time; the message says which and why."""


def grpc_serving(target: str, service: str = READINESS_SERVICE, timeout: float = 2.0) -> bool:
    """Whether `target` answers grpc.health.v1 Check(service) with SERVING (plaintext channel)."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    try:
        with grpc.insecure_channel(target) as channel:
            request = health_pb2.HealthCheckRequest(service=service)
            reply = health_pb2_grpc.HealthStub(channel).Check(request, timeout=timeout)
    except grpc.RpcError:
        return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def http_ok(url: str, timeout: float = 2.0) -> bool:
    """Whether a GET of `url` answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (bound, then released)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def connect_host(host: str) -> str:
    """Where to reach a server that listens on `host` (a wildcard bind is reached on loopback)."""
    return "127.0.0.1" if host in ("", "0.0.0.0", "::", "[::]") else host


def wait_ready(
    ready: Callable[[], bool],
    *,
    what: str,
    timeout: float,
    alive: Callable[[], bool] = lambda: True,
    describe: Callable[[], str] = lambda: "",
    interval: float = 1.0,
    note_every: float = 30.0,
) -> float:
    """Poll `ready` until it holds; return the seconds it took.

    Raises NotReady when `alive` turns false (the process exited while starting) or after
    `timeout` seconds; `describe` adds context (a log tail) to that message. A note goes to
    stderr every `note_every` seconds so a long engine start does not look like a hang.
    """
    started = time.monotonic()
    last_note = started
    while True:
        if ready():
            return time.monotonic() - started
        if not alive():
            raise NotReady(f"{what}: exited while starting\n{describe()}".rstrip())
        now = time.monotonic()
        if now - started > timeout:
            raise NotReady(f"{what}: not ready after {timeout:.0f}s\n{describe()}".rstrip())
        if now - last_note > note_every:
            print(f"  waiting for {what} ({now - started:.0f}s)", file=sys.stderr, flush=True)
            last_note = now
        time.sleep(interval)
