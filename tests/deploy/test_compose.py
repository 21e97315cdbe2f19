"""deploy/docker/compose*.yaml through the real docker-compose v2 loader (schema, merge, interpolation)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.deploy.helpers import (
    DOCKER,
    GATEWAY_IMAGE,
    SERVICE_IMAGE,
    compose,
    compose_config,
    dockerfile_stages,
    duration_seconds,
    project_version,
)

GPU = ("compose.yaml",)
CPU = ("compose.yaml", "compose.cpu.yaml")


@pytest.mark.parametrize("files", [GPU, CPU], ids=["gpu", "cpu"])
def test_compose_files_pass_the_compose_schema(files: tuple[str, ...]) -> None:
    result = compose(files, "config", "--quiet")
    assert result.returncode == 0, result.stderr


def test_the_loader_rejects_what_the_schema_forbids(tmp_path: Path) -> None:
    bad = tmp_path / "compose.yaml"
    bad.write_text(
        (DOCKER / "compose.yaml").read_text().replace("shm_size: 16gb", "shm_size: 16gb\n    gpus_count: 4")
    )
    result = compose([bad], "config", "--quiet", cwd=tmp_path)
    assert result.returncode != 0
    assert "gpus_count" in result.stderr


def test_service_reserves_four_gpus_and_enough_shared_memory() -> None:
    service = compose_config(*GPU)["services"]["service"]
    (device,) = service["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
    assert device["count"] == 4, "gpt-oss-120b-tp4 is tensor parallel over 4 GPUs"
    assert service["environment"]["GPTOSS_PROFILE"] == "gpt-oss-120b-tp4"
    assert int(service["shm_size"]) >= 8 << 30


def test_cpu_override_drops_the_gpu_and_builds_the_cpu_engine() -> None:
    service = compose_config(*CPU)["services"]["service"]
    assert "deploy" not in service
    assert service["environment"]["GPTOSS_PROFILE"] == "cpu-tiny"
    assert service["build"]["args"] == {"ENGINE": "cpu", "SERVICE_BASE": "python:3.11-slim-bookworm"}
    assert service["image"].endswith("-cpu")


@pytest.mark.parametrize("files", [GPU, CPU], ids=["gpu", "cpu"])
def test_builds_use_dockerfile_stages_and_the_versioned_images(files: tuple[str, ...]) -> None:
    services = compose_config(*files)["services"]
    stages = dockerfile_stages()
    tag = project_version()
    for name, image in (("service", SERVICE_IMAGE), ("gateway", GATEWAY_IMAGE)):
        build = services[name]["build"]
        assert Path(build["context"]) == DOCKER.parents[1]
        assert (Path(build["context"]) / build["dockerfile"]) == DOCKER / "Dockerfile"
        assert build["target"] == name and name in stages
        assert services[name]["image"].split(":")[0] == image
        assert services[name]["image"].split(":")[1].startswith(tag)


def test_ports_match_the_env_the_processes_listen_on() -> None:
    services = compose_config(*GPU)["services"]
    service_env = services["service"]["environment"]
    gateway_env = services["gateway"]["environment"]
    assert service_env["GPTOSS_HOST"] == "0.0.0.0" and gateway_env["GPTOSS_GATEWAY_HOST"] == "0.0.0.0"
    targets = {p["target"] for p in services["service"]["ports"]}
    assert targets == {int(service_env["GPTOSS_PORT"]), int(service_env["GPTOSS_METRICS_PORT"])}
    assert {p["target"] for p in services["gateway"]["ports"]} == {int(gateway_env["GPTOSS_GATEWAY_PORT"])}
    for service in services.values():
        assert all(p["host_ip"] == "127.0.0.1" for p in service["ports"]), "published on loopback by default"


def test_gateway_reaches_the_service_by_its_compose_name() -> None:
    services = compose_config(*GPU)["services"]
    host, _, port = services["gateway"]["environment"]["GPTOSS_GATEWAY_BACKENDS"].partition(":")
    assert host == "service" and port == services["service"]["environment"]["GPTOSS_PORT"]
    assert services["gateway"]["depends_on"]["service"]["condition"] == "service_started"


def test_health_checks_probe_readiness_and_liveness() -> None:
    services = compose_config(*GPU)["services"]
    service_check = services["service"]["healthcheck"]
    assert service_check["test"] == ["CMD", "gptoss-healthcheck", "grpc"]  # default: readiness
    assert duration_seconds(service_check["start_period"]) >= 300, "engine start is 155-230 s on 4x H100"
    assert services["gateway"]["healthcheck"]["test"] == [
        "CMD",
        "gptoss-healthcheck",
        "http",
        "--path",
        "/health",
    ]


def test_stop_grace_period_covers_the_drain() -> None:
    services = compose_config(*GPU)["services"]
    drain = float(services["service"]["environment"]["GPTOSS_DRAIN_GRACE_SECONDS"])
    assert duration_seconds(services["service"]["stop_grace_period"]) >= drain + 5
    # Docker's default (10 s) would kill the gateway's in-flight streams during its own shutdown.
    assert duration_seconds(services["gateway"]["stop_grace_period"]) >= 30
