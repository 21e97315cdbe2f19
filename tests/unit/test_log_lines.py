"""vLLM's loggers and raw stderr lines come out in the service's JSON line format."""

from __future__ import annotations

import io
import json
import logging
import logging.config
import os
from pathlib import Path

import pytest

from service import logs
from service.logs import vllm_logging_config
from service.stderr_lines import LineSplitter, wrap_line


def test_vllm_logger_config_writes_our_json_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    config = vllm_logging_config("debug")
    config["handlers"]["json"]["stream"] = stream
    logging.config.dictConfig(config)
    try:
        logging.getLogger("vllm.v1.engine.core").info("Initializing %s", "engine", extra={"n": 1})
        line = json.loads(stream.getvalue())
        assert line["logger"] == "vllm.v1.engine.core" and line["msg"] == "Initializing engine"
        assert line["level"] == "info" and line["n"] == 1
        assert logging.getLogger("vllm").propagate is False
    finally:
        logging.getLogger("vllm").handlers.clear()
        logging.getLogger("vllm").propagate = True


def test_configure_logging_exports_the_vllm_config_for_child_processes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # setenv, not delenv: delenv of an unset variable records nothing, so teardown would leave
    # configure_logging's path (deleted below) behind, and the next engine in the session would
    # fail to start on a missing logging config.
    monkeypatch.setenv("VLLM_LOGGING_CONFIG_PATH", "")
    monkeypatch.setenv("VLLM_CONFIGURE_LOGGING", "0")
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    try:
        logs.configure_logging("warning")
        path = Path(os.environ["VLLM_LOGGING_CONFIG_PATH"])
        assert os.environ["VLLM_CONFIGURE_LOGGING"] == "1"
        assert json.loads(path.read_text()) == vllm_logging_config("warning")
        monkeypatch.setenv("VLLM_LOGGING_CONFIG_PATH", "/user/choice.json")
        logs.configure_logging("info")
        assert os.environ["VLLM_LOGGING_CONFIG_PATH"] == "/user/choice.json"  # the user's file wins
        path.unlink()
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        logging.captureWarnings(False)


def test_raw_lines_are_wrapped_and_json_lines_pass_through() -> None:
    native = "[W1201 19:13:09.256 utils.cpp:68] Warning: NUMA binding: Using MEMBIND policy\n"
    wrapped = json.loads(wrap_line(native))
    assert wrapped["logger"] == "stderr" and wrapped["level"] == "warning"
    assert wrapped["msg"] == native.rstrip("\n") and wrapped["ts"].endswith("Z")
    ours = '{"ts": "t", "level": "info", "logger": "service", "msg": "hi"}\n'
    assert wrap_line(ours) == ours
    assert json.loads(wrap_line("{not json"))["msg"] == "{not json"


def test_progress_bars_are_thinned_and_lines_survive_chunking() -> None:
    now = [0.0]
    splitter = LineSplitter(clock=lambda: now[0])
    assert splitter.feed("plain li") == []
    assert splitter.feed("ne\r\nnext\n") == ["plain line", "next"]
    shown = []
    for percent in range(0, 101, 10):  # tqdm: "\r"-ended updates, 1 s apart, then a final "\n"
        now[0] = percent / 10
        shown += splitter.feed(f"Loading shards: {percent}%\r")
    shown += splitter.feed("Loading shards: 100% done\n")
    assert shown == ["Loading shards: 0%", "Loading shards: 50%", "Loading shards: 100% done"]
