"""One log format: `python -m service` writes only JSON lines on stderr, vLLM's and its engine
core's included (they configure logging in their own processes), and raw C++/print output."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.engine

REPO = Path(__file__).resolve().parents[2]
SERVING = "service phase: starting -> serving"


def test_service_stderr_is_json_lines_from_start_to_exit() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GPTOSS_", "VLLM_LOGGING"))}
    process = subprocess.Popen(
        [sys.executable, "-m", "service", "--profile", "cpu-tiny", "--port", "0", "--metrics-port", "0"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        cwd=REPO,
        env=env,
    )
    lines: list[str] = []
    serving = threading.Event()

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.append(line)
            if SERVING in line:
                serving.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert serving.wait(300), "service never served:\n" + "".join(lines[-20:])
        time.sleep(1)
        process.send_signal(signal.SIGTERM)
        assert process.wait(120) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    reader.join(10)
    not_json = []
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except ValueError:
            not_json.append(line)
    assert not not_json, f"{len(not_json)} plain-text stderr lines, e.g. {not_json[:5]}"
    loggers = {str(record["logger"]) for record in records}
    assert "service" in loggers and any(name.startswith("vllm.") for name in loggers)
    processes = {
        record.get("vllm_process_name") for record in records if str(record["logger"]).startswith("vllm.")
    }
    assert "EngineCore" in processes, processes  # the child process logs through our formatter too
    assert all({"ts", "level", "logger", "msg"} <= set(record) for record in records)
