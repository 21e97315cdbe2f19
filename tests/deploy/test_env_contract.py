"""Every GPTOSS_* variable a deployment sets is a real setting, and the real settings classes
(service.config.Settings, the gateway's GatewaySettings) accept the values as deployed."""

from __future__ import annotations

import os
import shlex
from typing import Any

import pytest

from tests.deploy.helpers import (
    OVERLAYS,
    compose_config,
    container_env,
    dockerfile_stages,
    find,
    kustomize,
    truss_spec,
)

# The names the deployments are written against (issue 7's facts); each must be deployed somewhere.
SERVICE_CONTRACT = {
    "GPTOSS_PROFILE",
    "GPTOSS_MODEL",
    "GPTOSS_HOST",
    "GPTOSS_PORT",
    "GPTOSS_METRICS_PORT",
    "GPTOSS_MAX_CONCURRENT_REQUESTS",
    "GPTOSS_DRAIN_GRACE_SECONDS",
    "GPTOSS_API_KEYS",
}
GATEWAY_CONTRACT = {
    "GPTOSS_GATEWAY_HOST",
    "GPTOSS_GATEWAY_PORT",
    "GPTOSS_GATEWAY_BACKENDS",
    "GPTOSS_GATEWAY_API_KEYS",
}
SECRET = "<from secret>"
COMPOSE_FILES = [("compose.yaml",), ("compose.yaml", "compose.cpu.yaml")]
WHERE = [
    "truss (service + gateway)",
    *(f"{'+'.join(files)} {name}" for files in COMPOSE_FILES for name in ("service", "gateway")),
    *(f"k8s {target} {name}" for target in ["base", *OVERLAYS] for name in ("service", "gateway")),
]


def dockerfile_env(stage: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, rest in dockerfile_stages()[stage]:
        if keyword == "ENV":
            env.update(item.split("=", 1) for item in shlex.split(rest))  # type: ignore[misc]
    return env


def deployed_envs() -> dict[str, dict[str, str]]:
    """Container environments as deployed, by where they come from."""
    envs: dict[str, dict[str, str]] = {
        "truss (service + gateway)": {
            **dockerfile_env("service"),
            **truss_spec().config.environment_variables,
        },
    }
    for files in COMPOSE_FILES:
        services = compose_config(*files)["services"]
        envs[f"{'+'.join(files)} service"] = {
            **dockerfile_env("service"),
            **services["service"]["environment"],
        }
        envs[f"{'+'.join(files)} gateway"] = {
            **dockerfile_env("gateway"),
            **services["gateway"]["environment"],
        }
    for target in ["base", *OVERLAYS]:
        docs = kustomize(target)
        for name in ("service", "gateway"):
            deployment = find(docs, "Deployment", f"gptoss-{name}")
            envs[f"k8s {target} {name}"] = {**dockerfile_env(name), **container_env(docs, deployment, name)}
    assert sorted(envs) == sorted(WHERE)
    return envs


def settings_classes() -> tuple[type[Any], type[Any]]:
    from gateway._settings import GatewaySettings
    from service.config import Settings

    return Settings, GatewaySettings


def test_every_gptoss_variable_is_a_real_setting() -> None:
    service_settings, gateway_settings = settings_classes()
    service_fields = {f"GPTOSS_{name.upper()}" for name in service_settings.model_fields}
    gateway_fields = {f"GPTOSS_GATEWAY_{name.upper()}" for name in gateway_settings.model_fields}
    for where, env in deployed_envs().items():
        for name in env:
            if name.startswith("GPTOSS_GATEWAY_"):
                assert name in gateway_fields, f"{where}: {name} is not a gateway setting"
            elif name.startswith("GPTOSS_"):
                assert name in service_fields, f"{where}: {name} is not a service setting"


def test_the_contract_names_are_deployed() -> None:
    envs = deployed_envs()
    for target in ["base", *OVERLAYS]:
        assert SERVICE_CONTRACT - {"GPTOSS_MODEL"} <= set(envs[f"k8s {target} service"]), target
        assert GATEWAY_CONTRACT <= set(envs[f"k8s {target} gateway"]), target
    assert "GPTOSS_MODEL" in envs["k8s gpt-oss-120b-tp4 service"]
    assert SERVICE_CONTRACT - {"GPTOSS_API_KEYS"} <= set(envs["truss (service + gateway)"])


@pytest.mark.parametrize("where", WHERE)
def test_the_settings_accept_the_deployed_values(where: str, monkeypatch: pytest.MonkeyPatch) -> None:
    service_settings, gateway_settings = settings_classes()
    for name in list(os.environ):
        if name.startswith("GPTOSS_"):
            monkeypatch.delenv(name)
    env = deployed_envs()[where]
    for name, value in env.items():
        if name.startswith("GPTOSS_") and value != SECRET:
            monkeypatch.setenv(name, value)
    if "gateway" in where:
        gateway = gateway_settings()
        assert gateway.host == env["GPTOSS_GATEWAY_HOST"] and gateway.port == int(env["GPTOSS_GATEWAY_PORT"])
        assert gateway.backends == [env["GPTOSS_GATEWAY_BACKENDS"]]
    if "service" in where:
        service = service_settings()
        assert service.port == int(env["GPTOSS_PORT"]) and service.metrics_port == int(
            env["GPTOSS_METRICS_PORT"]
        )
        assert service.host == env["GPTOSS_HOST"]
        assert service.drain_grace_seconds == float(env["GPTOSS_DRAIN_GRACE_SECONDS"])
        if service.profile == "gpt-oss-120b-tp4":
            assert service.tensor_parallel_size == 4 and service.kv_cache_dtype == "fp8"
            assert service.max_num_seqs == 256 and service.gpu_memory_utilization == 0.95
