"""Raw stderr output (C++ warnings, prints, early child-process messages) as JSON log lines.

Python logging covers our code and vLLM's loggers, but torch/vLLM C++ code and processes that
print before their logging is configured write straight to file descriptor 2. The service
points fd 2 at a pipe; one thread copies JSON lines through unchanged and wraps any other line
as `{"logger": "stderr", "msg": ...}`. Child processes inherit the pipe, so theirs are covered.
"""

from __future__ import annotations

import atexit
import codecs
import json
import os
import re
import sys
import threading
import time
from collections.abc import Callable


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


PROGRESS_EVERY_SECONDS = 5.0  # progress bars (tqdm's `\r` updates): one line per 5 s, not 10 a second
_LINE_END = re.compile(r"\r\n|\n|\r")


class LineSplitter:
    """Text in, whole lines out; `\r`-ended progress updates are thinned to one per interval."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._pending = ""
        self._clock = clock
        self._last_progress: float | None = None

    def feed(self, text: str) -> list[str]:
        self._pending += text
        lines = []
        while (match := _LINE_END.search(self._pending)) is not None:
            if match.group() == "\r" and match.end() == len(self._pending):
                break  # maybe the first half of "\r\n": wait for the next chunk
            line, self._pending = self._pending[: match.start()], self._pending[match.end() :]
            if match.group() == "\r":
                now = self._clock()
                if self._last_progress is not None and now - self._last_progress < PROGRESS_EVERY_SECONDS:
                    continue
                self._last_progress = now
            if line.strip():
                lines.append(line)
        return lines


def _copy(read_fd: int, out_fd: int) -> None:
    splitter = LineSplitter()
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    while chunk := os.read(read_fd, 1 << 16):
        for line in splitter.feed(decoder.decode(chunk)):
            os.write(out_fd, wrap_line(line).encode())
    for line in splitter.feed(decoder.decode(b"", final=True) + "\n"):
        os.write(out_fd, wrap_line(line).encode())
    os.close(read_fd)


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
        copier.join(0.5)  # children that outlive us (resource tracker) keep the pipe open

    atexit.register(restore)
