"""Supervise child processes that form one stack: start them together, stop them in order.

Why in Python and here: `make run` and the container entrypoint must behave the same (same
settings, same stop order, same exit status), so both run this one implementation.

- Children start at once, each in its own process group: a terminal's Ctrl-C reaches only the
  supervisor, which then stops them in order (the service drains while the gateway still relays
  its in-flight streams), instead of every process stopping at the same moment. (A SIGKILLed
  supervisor leaves them running; as a container's PID 1 they go with it.)
- SIGTERM / SIGINT: each child, in `stop_order`, gets SIGTERM and is waited for (up to
  `stop_timeout`, then its whole process group is killed). A second signal kills what is left now.
- A child that exits on its own stops the others; the supervisor then exits non-zero (the child's
  code, or 1 if it exited 0), so Docker's restart policy or supervisord replaces the container.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import FrameType

POLL_S = 0.2
PROBE_EVERY_S = 1.0


@dataclass(frozen=True)
class ChildSpec:
    """One process of the stack: a name for messages, its argv, what it adds to the environment."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)


def exit_status(returncode: int) -> int:
    """A Popen returncode as a shell exit status (killed by signal N: 128 + N)."""
    return 128 - returncode if returncode < 0 else returncode


def say(message: str) -> None:
    print(f"[stack] {message}", flush=True)


class Supervisor:
    def __init__(
        self,
        children: Sequence[ChildSpec],
        stop_order: Sequence[str] | None = None,
        ready: Callable[[], bool] | None = None,
        ready_message: str = "",
        stop_timeout: float = 150.0,
        on_ready: Callable[[], None] | None = None,
    ) -> None:
        self.specs = list(children)
        self.stop_order = list(stop_order or [spec.name for spec in children])
        self.ready = ready
        self.ready_message = ready_message
        self.on_ready = on_ready  # runs once, in a thread, after the ready line
        self.stop_timeout = stop_timeout
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.signals = 0

    def run(self) -> int:
        """Start every child, watch them until a signal or a death, stop them, return the status."""
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            for spec in self.specs:
                self.processes[spec.name] = subprocess.Popen(
                    list(spec.argv), env={**os.environ, **spec.env}, process_group=0
                )
            died = self._watch()
            if died is None:
                say("stopping: " + ", then ".join(self.stop_order))
                return self._stop_all(expected=set(self.processes))
            code = exit_status(self.processes[died].returncode)
            say(f"{died} exited ({code}): stopping the others")
            self._stop_all(expected=set(self.processes) - {died})
            return code or 1
        finally:
            self._kill_all()  # only does something when run() itself failed half-way
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    # -- internals ----------------------------------------------------------------------------

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.signals += 1
        if self.signals > 1:
            say(f"{signal.Signals(signum).name} again: killing what is left")

    def _watch(self) -> str | None:
        """Until a signal (None) or a child's exit (its name); announces readiness once."""
        announced = self.ready is None
        next_probe = time.monotonic()
        while not self.signals:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    return name
            if not announced and time.monotonic() >= next_probe:
                assert self.ready is not None
                if self.ready():
                    announced = True
                    say(self.ready_message)
                    if self.on_ready is not None:
                        threading.Thread(target=self.on_ready, name="on-ready", daemon=True).start()
                next_probe = time.monotonic() + PROBE_EVERY_S
            time.sleep(POLL_S)
        return None

    def _stop_all(self, expected: set[str]) -> int:
        """Stop in order; the first non-zero status among those we stopped is the result. A child
        that dies of the SIGTERM we sent it (uvicorn re-raises it after a clean shutdown) is clean."""
        result = 0
        for name in self.stop_order:
            process = self.processes[name]
            code = self._stop(process)
            if name in expected and code not in (0, -signal.SIGTERM) and not result:
                result = exit_status(code)
        return result

    def _stop(self, process: subprocess.Popen[bytes]) -> int:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        signals_at_start = self.signals
        while process.poll() is None:
            if time.monotonic() > deadline or self.signals > max(signals_at_start, 1):
                _kill_group(process)
                break
            time.sleep(POLL_S)
        return process.wait()

    def _kill_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                _kill_group(process)
                process.wait()


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the child's process group (its engine processes with it)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
