"""The contract's guards work: buf lint is clean and buf breaking catches a breaking change."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BUF = str(Path(sys.executable).parent / "buf")


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120)


def test_buf_lint_is_clean() -> None:
    result = run(BUF, "lint", cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_buf_breaking_catches_a_removed_field(tmp_path: Path) -> None:
    shutil.copy(ROOT / "buf.yaml", tmp_path / "buf.yaml")
    shutil.copytree(ROOT / "protos", tmp_path / "protos")
    for command in (
        ["git", "init", "-q", "-b", "main"],
        ["git", "add", "."],
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base"],
    ):
        assert run(*command, cwd=tmp_path).returncode == 0
    assert run(BUF, "breaking", "--against", ".git#branch=main", cwd=tmp_path).returncode == 0
    proto = tmp_path / "protos" / "gptoss" / "v1" / "inference.proto"
    text = proto.read_text()
    proto.write_text(text.replace("  bool ignore_eos = 17;\n", ""))
    result = run(BUF, "breaking", "--against", ".git#branch=main", cwd=tmp_path)
    assert result.returncode != 0
    assert "ignore_eos" in result.stdout + result.stderr
