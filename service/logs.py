"""Structured JSON logs on stderr; fields passed with `extra=` become JSON keys.

One format for the whole process tree: vLLM configures its own `vllm` logger (plain text) in
every process it starts, the engine core included, from `VLLM_LOGGING_CONFIG_PATH`. So
`configure_logging` writes a dictConfig file that points vLLM at `JsonFormatter` and exports
the variable before the engine starts; children inherit it.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "color_message",
}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def vllm_logging_config(level: str) -> dict[str, Any]:
    """The dictConfig vLLM applies in each of its processes: its loggers through JsonFormatter."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
        "handlers": {
            "json": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
        },
        "loggers": {"vllm": {"handlers": ["json"], "level": level.upper(), "propagate": False}},
    }


def _export_vllm_logging(level: str) -> None:
    """Point vLLM (this process and the engine core it spawns) at our format, unless the user did."""
    if os.environ.get("VLLM_LOGGING_CONFIG_PATH"):
        return
    fd, path = tempfile.mkstemp(prefix="gptoss-vllm-logging-", suffix=".json")
    with os.fdopen(fd, "w") as file:
        json.dump(vllm_logging_config(level), file)
    atexit.register(Path(path).unlink, missing_ok=True)
    os.environ["VLLM_CONFIGURE_LOGGING"] = "1"
    os.environ["VLLM_LOGGING_CONFIG_PATH"] = path


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.captureWarnings(True)  # warnings.warn (torch, transformers) as JSON lines, not raw text
    _export_vllm_logging(level)
