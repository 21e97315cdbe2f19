"""deploy/k8s: kustomize renders (kubectl's built-in kustomize), Kubernetes JSON schemas
(kubernetes-validate's bundled, strict), and the cross-checks a schema cannot make."""

from __future__ import annotations

import copy
import re
from typing import Any

import kubernetes_validate
import pytest
from gptoss.contract import LIVENESS_SERVICE, READINESS_SERVICE

from tests.deploy.helpers import (
    GATEWAY_IMAGE,
    OVERLAYS,
    SERVICE_IMAGE,
    container,
    container_env,
    find,
    kustomize,
    project_version,
)

TARGETS = ["base", *OVERLAYS]
GPU_TARGETS = [t for t in TARGETS if t != "cpu-tiny"]
# Oldest and newest Kubernetes the manifests are checked against (gRPC probes are GA since 1.27).
K8S_VERSIONS = ["1.29.0", kubernetes_validate.latest_version()]
ENGINE_START_SECONDS = 230  # the slowest 120b start seen on 4x H100


def service(target: str) -> dict[str, Any]:
    return find(kustomize(target), "Deployment", "gptoss-service")


def gateway(target: str) -> dict[str, Any]:
    return find(kustomize(target), "Deployment", "gptoss-gateway")


def test_the_expected_overlays_exist() -> None:
    assert OVERLAYS == ["cpu-tiny", "gpt-oss-120b-tp4"]


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("target", TARGETS)
def test_every_rendered_object_passes_the_strict_schema(target: str, version: str) -> None:
    docs = kustomize(target)
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "Service", "ConfigMap", "HorizontalPodAutoscaler", "PodDisruptionBudget"} <= kinds
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)


def test_the_schemas_do_reject_broken_objects() -> None:
    broken = copy.deepcopy(service("base"))
    container(broken, "service")["readinessProbe"]["grpc"]["port"] = "grpc"  # must be a number
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSIONS[-1], strict=True)
    typo = copy.deepcopy(gateway("base"))
    typo["spec"]["template"]["spec"]["terminationGracePeriod"] = 45  # strict: unknown field
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(typo, K8S_VERSIONS[-1], strict=True)


@pytest.mark.parametrize("target", TARGETS)
def test_service_probes_use_grpc_health_on_the_grpc_port(target: str) -> None:
    docs = kustomize(target)
    deployment = service(target)
    spec = container(deployment, "service")
    env = container_env(docs, deployment, "service")
    ports = {p["name"]: p["containerPort"] for p in spec["ports"]}
    assert ports == {"grpc": int(env["GPTOSS_PORT"]), "metrics": int(env["GPTOSS_METRICS_PORT"])}
    assert env["GPTOSS_HOST"] == "0.0.0.0"
    expected = {
        "startupProbe": READINESS_SERVICE,
        "readinessProbe": READINESS_SERVICE,
        "livenessProbe": LIVENESS_SERVICE,
    }
    for probe, health_service in expected.items():
        assert spec[probe]["grpc"] == {"port": ports["grpc"], "service": health_service}, probe


@pytest.mark.parametrize("target", TARGETS)
def test_startup_probe_covers_engine_start(target: str) -> None:
    probe = container(service(target), "service")["startupProbe"]
    budget = probe.get("initialDelaySeconds", 0) + probe["periodSeconds"] * probe["failureThreshold"]
    floor = 120 if target == "cpu-tiny" else 2 * ENGINE_START_SECONDS
    assert budget >= floor
    assert service(target)["spec"]["progressDeadlineSeconds"] >= budget


@pytest.mark.parametrize("target", TARGETS)
def test_termination_grace_covers_prestop_and_drain(target: str) -> None:
    docs = kustomize(target)
    for deployment, name, grace_var in [
        (service(target), "service", "GPTOSS_DRAIN_GRACE_SECONDS"),
        (gateway(target), "gateway", None),
    ]:
        spec = container(deployment, name)
        pre_stop = spec["lifecycle"]["preStop"]["exec"]["command"]
        assert pre_stop[0] == "sleep"
        if grace_var:
            drain = float(container_env(docs, deployment, name)[grace_var])
        else:
            from gateway._settings import GatewaySettings

            drain = GatewaySettings.model_fields["graceful_shutdown_timeout"].default
        grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        assert grace >= float(pre_stop[1]) + drain + 5, name


@pytest.mark.parametrize("target", TARGETS)
def test_gpus_match_the_profile_tensor_parallel_size(target: str) -> None:
    from service.config import PROFILES

    docs = kustomize(target)
    deployment = service(target)
    resources = container(deployment, "service")["resources"]
    profile = container_env(docs, deployment, "service")["GPTOSS_PROFILE"]
    tensor_parallel = PROFILES[profile].get("tensor_parallel_size", 1)
    if target in GPU_TARGETS:
        assert int(resources["limits"]["nvidia.com/gpu"]) == tensor_parallel == 4
        assert int(resources["requests"]["nvidia.com/gpu"]) == tensor_parallel
        volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
        assert volumes["dshm"]["emptyDir"]["medium"] == "Memory"
    else:
        assert profile == "cpu-tiny"
        assert "nvidia.com/gpu" not in str(resources)


@pytest.mark.parametrize("target", TARGETS)
def test_gateway_round_robins_over_the_headless_service(target: str) -> None:
    docs = kustomize(target)
    env = container_env(docs, gateway(target), "gateway")
    match = re.fullmatch(r"dns:///([a-z0-9-]+):(\d+)", env["GPTOSS_GATEWAY_BACKENDS"])
    assert match, env["GPTOSS_GATEWAY_BACKENDS"]
    headless = find(docs, "Service", match.group(1))
    assert headless["spec"]["clusterIP"] == "None", "round_robin needs every pod IP from DNS"
    grpc_port = next(p for p in headless["spec"]["ports"] if p["name"] == "grpc")
    assert grpc_port["port"] == int(match.group(2))
    assert grpc_port["targetPort"] == "grpc"
    labels = service(target)["spec"]["template"]["metadata"]["labels"]
    assert headless["spec"]["selector"].items() <= labels.items()
    assert not headless["spec"].get("publishNotReadyAddresses"), "draining / starting pods must drop out"


@pytest.mark.parametrize("target", TARGETS)
def test_gateway_probes_service_and_hpa(target: str) -> None:
    docs = kustomize(target)
    deployment = gateway(target)
    spec = container(deployment, "gateway")
    env = container_env(docs, deployment, "gateway")
    port = int(env["GPTOSS_GATEWAY_PORT"])
    assert env["GPTOSS_GATEWAY_HOST"] == "0.0.0.0"
    assert spec["ports"] == [{"name": "http", "containerPort": port, "protocol": "TCP"}]
    assert spec["readinessProbe"]["httpGet"] == {"path": "/ready", "port": port}
    assert spec["livenessProbe"]["httpGet"] == {"path": "/health", "port": port}
    http = find(docs, "Service", "gptoss-gateway")
    assert http["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    assert http["spec"]["ports"][0]["targetPort"] == "http"
    hpa = find(docs, "HorizontalPodAutoscaler", "gptoss-gateway")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "gptoss-gateway",
    }
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert "cpu" in spec["resources"]["requests"], "a CPU utilization target needs CPU requests"


@pytest.mark.parametrize("target", TARGETS)
def test_pod_hygiene(target: str) -> None:
    docs = kustomize(target)
    for deployment in (d for d in docs if d["kind"] == "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        # Service links would inject GPTOSS_GATEWAY_PORT=tcp://... into the settings' env prefix.
        assert pod["enableServiceLinks"] is False
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001
        for spec in pod["containers"]:
            assert spec["securityContext"]["allowPrivilegeEscalation"] is False
            assert spec["securityContext"]["capabilities"]["drop"] == ["ALL"]
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    for budget in (d for d in docs if d["kind"] == "PodDisruptionBudget"):
        selector = budget["spec"]["selector"]["matchLabels"]
        assert any(
            selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
            for d in docs
            if d["kind"] == "Deployment"
        )


@pytest.mark.parametrize("target", TARGETS)
def test_images_are_the_versioned_ones(target: str) -> None:
    tag = project_version() + ("-cpu" if target == "cpu-tiny" else "")
    assert container(service(target), "service")["image"] == f"{SERVICE_IMAGE}:{tag}"
    assert container(gateway(target), "gateway")["image"] == f"{GATEWAY_IMAGE}:{project_version()}"


@pytest.mark.parametrize("target", OVERLAYS)
def test_overlays_put_everything_in_their_namespace(target: str) -> None:
    docs = kustomize(target)
    (namespace,) = [d["metadata"]["name"] for d in docs if d["kind"] == "Namespace"]
    for doc in docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == namespace, doc["metadata"]["name"]


def test_120b_overlay_reads_weights_offline_from_a_read_only_volume() -> None:
    docs = kustomize("gpt-oss-120b-tp4")
    deployment = service("gpt-oss-120b-tp4")
    env = container_env(docs, deployment, "service")
    assert env["HF_HUB_OFFLINE"] == "1"
    mounts = {m["mountPath"]: m for m in container(deployment, "service")["volumeMounts"]}
    assert mounts[env["GPTOSS_MODEL"]]["readOnly"] is True
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    claim = volumes[mounts[env["GPTOSS_MODEL"]]["name"]]["persistentVolumeClaim"]
    pvc = find(docs, "PersistentVolumeClaim", claim["claimName"])
    assert pvc["spec"]["accessModes"] == ["ReadOnlyMany"]
    assert deployment["spec"]["replicas"] >= 2


@pytest.mark.parametrize("target", TARGETS)
def test_the_hpa_alone_owns_the_gateway_replica_count(target: str) -> None:
    assert "replicas" not in gateway(target)["spec"], "kubectl apply would reset the HPA's scaling"
