"""JSON log lines: one object per line, `extra=` fields as keys, no uvicorn colour codes."""

from __future__ import annotations

import json
import logging

from service.logs import JsonFormatter


def test_json_line_carries_extra_fields() -> None:
    record = logging.LogRecord("svc", logging.INFO, __file__, 1, "request %s", ("done",), None)
    record.request_id = "r-1"
    record.color_message = "\x1b[36mrequest\x1b[0m"
    line = json.loads(JsonFormatter().format(record))
    assert line["msg"] == "request done" and line["request_id"] == "r-1" and line["level"] == "info"
    assert "color_message" not in line and line["ts"].endswith("Z")


def test_exceptions_are_one_json_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logging.LogRecord("svc", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    text = JsonFormatter().format(record)
    assert "\n" not in text and "ValueError: boom" in json.loads(text)["exc"]
