"""Helpers for the end-to-end client tests: subprocess runs, free ports, Harmony token scripts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from service.harmony import tokens as tk
from service.probes import free_port

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent  # the venv's bin: gptoss, buf
EXAMPLES = REPO / "clients" / "examples"


def clean_env(**extra: str) -> dict[str, str]:
    """The environment minus anything that would change the CLI's defaults or colors."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPTOSS_") and k != "NO_COLOR"}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


def run(
    argv: list[str], *, stdin: str = "", timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, input=stdin, capture_output=True, text=True, timeout=timeout, env=env or clean_env(), cwd=REPO
    )


def gptoss(*args: str, stdin: str = "", timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The installed console script, as a user runs it."""
    return run([str(BIN / "gptoss"), *args], stdin=stdin, timeout=timeout)


def unused_port() -> int:
    """A port nothing listens on (bound then released), for "server down" cases."""
    return free_port()


def harmony(text: str) -> list[int]:
    return list(tk.encoding().encode(text, allowed_special="all"))


def decode(token_ids: list[int]) -> str:
    return str(tk.encoding().decode(token_ids))


def tool_call_script(name: str, arguments: str) -> list[list[int]]:
    """Engine output (one token per step) for: short reasoning, then a call of `name`."""
    text = (
        "<|channel|>analysis<|message|>Need a tool.<|end|>"
        f"<|start|>assistant<|channel|>commentary to=functions.{name} <|constrain|>json<|message|>{arguments}<|call|>"
    )
    return [[t] for t in harmony(text)]


def final_script(answer: str) -> list[list[int]]:
    return [[t] for t in harmony(f"<|channel|>final<|message|>{answer}<|return|>")]
