"""py-spy sampling of a server process during a load point, and a summary of where its time goes."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any


def find_pyspy() -> str | None:
    """py-spy on PATH, beside this interpreter, or in a `pip --target` folder on sys.path."""
    found = shutil.which("py-spy")
    if found:
        return found
    candidates = [Path(sys.executable).parent / "py-spy"]
    candidates += [Path(entry) / "bin" / "py-spy" for entry in sys.path if entry]
    return next((str(path) for path in candidates if path.is_file()), None)


def record(pid: int, seconds: float, out: Path, rate: int = 100) -> subprocess.Popen[bytes] | None:
    """Start sampling (non-blocking: the target is never paused); collapsed stacks go to `out`."""
    binary = find_pyspy()
    if binary is None:
        return None
    argv = [
        binary,
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(max(1, round(seconds))),
        "--rate",
        str(rate),
    ]
    argv += ["--nonblocking", "--format", "raw", "--output", str(out)]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _frame(frame: str) -> str:
    """`func (path/to/pkg/module.py:123)` -> `func (pkg/module.py)`: lines vary, files identify."""
    name, _, where = frame.partition(" (")
    file = where.rsplit(":", 1)[0].rstrip(")")
    return f"{name} ({'/'.join(file.split('/')[-2:])})" if file else name


def _file(frame: str) -> str:
    where = frame.rpartition(" (")[2].rstrip(")")
    return where or frame


def summarize(raw: Path, top: int = 20) -> dict[str, Any]:
    """Self and inclusive sample shares per function, and self share per file, from collapsed stacks.

    Frames on (nearly) every stack (the interpreter's entry, the event loop's run) are left out of
    the inclusive list: they say nothing."""
    own: Counter[str] = Counter()
    own_file: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame(f) for f in stack.split(";") if f and not f.startswith("process ")]
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        own_file[_file(frames[-1])] += count
        for frame in set(frames):
            inclusive[frame] += count
    if not total:
        return {}
    for frame, n in list(inclusive.items()):
        if n >= 0.97 * total:
            del inclusive[frame]

    def shares(counter: Counter[str]) -> list[list[Any]]:
        return [[name, round(100.0 * n / total, 1)] for name, n in counter.most_common(top)]

    return {
        "samples": total,
        "self_pct": shares(own),
        "self_by_file_pct": shares(own_file),
        "inclusive_pct": shares(inclusive),
    }
