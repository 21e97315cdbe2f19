"""Raw stderr output (C++ warnings, prints, early child-process messages) as JSON log lines.

Python logging covers our code and vLLM's loggers, but torch/vLLM C++ code and processes that
print before their logging is configured write straight to file descriptor 2. The service
points fd 2 at a pipe; one thread copies JSON lines through unchanged and wraps any other line
as `{"logger": "stderr", "msg": ...}`. Child processes inherit the pipe, so theirs are covered.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import threading
import time


def wrap_line(line: str) -> str:
    """A JSON line unchanged; anything else as one JSON log line (same keys as JsonFormatter)."""
    text = line.rstrip("\n")
    if text.startswith("{"):
        try:
            json.loads(text)
            return text + "\n"
        except ValueError:
            pass
    now = time.time()
    entry = {
        "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z",
        "level": "warning" if text.startswith("[W") or "Warning" in text else "info",
        "logger": "stderr",
        "msg": text,
    }
    return json.dumps(entry) + "\n"


def _copy(read_fd: int, out_fd: int) -> None:
    with os.fdopen(read_fd, "rb") as pipe:
        for raw in pipe:
            if raw.strip():
                os.write(out_fd, wrap_line(raw.decode("utf-8", "replace")).encode())


def route_stderr_through_json() -> None:
    """Point fd 2 of this process (and its future children) at the JSON line wrapper."""
    sys.stderr.flush()
    read_fd, write_fd = os.pipe()
    original = os.dup(2)
    os.dup2(write_fd, 2)
    os.close(write_fd)
    copier = threading.Thread(target=_copy, args=(read_fd, original), name="stderr-json", daemon=True)
    copier.start()

    def restore() -> None:
        """At exit: write directly again, and let the copier drain what children left."""
        sys.stderr.flush()
        os.dup2(original, 2)
        copier.join(2.0)

    atexit.register(restore)
