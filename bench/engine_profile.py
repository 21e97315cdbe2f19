"""py-spy over vLLM's engine-core process while one benchmark point runs, and a summary of it.

Where does an engine step's time go when a grammar constrains the batch: waiting for the GPU, or
the engine core's own Python (scheduling, `update_from_output`, the bitmask fill)? Wrap a point in
`recording(out, name)` and read the answer with `python -m bench.engine_profile FILE.raw[.gz]`:
the share of the engine core's main thread samples under each of vLLM's step functions, and
its busiest source lines.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import os
import signal
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from bench.pyspy import find_pyspy

ENGINE_TITLE = "VLLM::EngineCore"
TOP_LINES = 6  # the step loop's busiest source lines, beside the phases
# vLLM's step functions (0.26 and 0.32), in the order a step runs them, plus what they wait on.
PHASES = (
    "Scheduler.schedule",
    "execute_model",
    "FutureWrapper.result",
    "Scheduler.update_from_output",
    "accept_tokens",
    "Scheduler.get_grammar_bitmask",
    "sample_tokens",
    "process_input_sockets",
    "process_output_sockets",
)


def engine_core_pid() -> int | None:
    """The engine-core process among this process's descendants (its title is set by vLLM)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
        except OSError:
            continue
        if title.startswith(ENGINE_TITLE) and _descends_from(int(entry.name), os.getpid()):
            return int(entry.name)
    return None


def _descends_from(pid: int, ancestor: int) -> bool:
    while pid > 1:
        if pid == ancestor:
            return True
        try:
            pid = int((Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            return False
    return False


@contextlib.contextmanager
def recording(out: Path | None, name: str, rate: int = 200) -> Iterator[None]:
    """Record the engine core with py-spy for the body's duration (nothing if out is None); never
    pauses it (`--nonblocking`), so the point's numbers stay comparable."""
    pid = engine_core_pid() if out is not None else None
    spy = find_pyspy()
    if out is None or pid is None or spy is None:
        yield
        return
    out.mkdir(parents=True, exist_ok=True)
    command = [spy, "record", "-p", str(pid), "-r", str(rate), "--idle", "--threads", "--nonblocking"]
    process = subprocess.Popen(
        [*command, "-f", "raw", "-o", str(out / f"{name}.raw")], stdout=subprocess.DEVNULL
    )
    try:
        yield
    finally:
        process.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
        process.wait(timeout=60)


def summary(raw: Path) -> dict[str, float | int]:
    """Share of the main thread's samples (the step loop) under each phase; frames may nest."""
    per_thread: Counter[str] = Counter()
    lines: list[tuple[str, list[str], int]] = []
    text = gzip.decompress(raw.read_bytes()).decode() if raw.suffix == ".gz" else raw.read_text()
    for line in text.splitlines():
        stack, _, samples = line.rpartition(" ")
        frames = stack.split(";")
        lines.append((frames[0], frames, int(samples)))
        per_thread[frames[0]] += int(samples)
    busy = {thread for thread, frames, _ in lines if any("run_busy_loop" in frame for frame in frames)}
    main = max(busy, key=per_thread.__getitem__, default=None)  # the step loop's thread, however named
    if main is None:
        return {}
    total = per_thread[main]
    shares: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    for thread, frames, count in lines:
        if thread != main:
            continue
        leaves[frames[-1]] += count
        names = {frame.split(" (")[0] for frame in frames}
        for phase in PHASES:
            if any(name.endswith(phase) for name in names):
                shares[phase] += count
    found: dict[str, float | int] = {phase: round(shares[phase] / total, 3) for phase in PHASES}
    found |= {f"line {frame}": round(n / total, 3) for frame, n in leaves.most_common(TOP_LINES)}
    return found | {"samples": total}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("raw", type=Path, nargs="+")
    for raw in parser.parse_args().raw:
        print(raw.name, summary(raw))


if __name__ == "__main__":
    main()
