"""deploy/truss through the truss package's own loader (truss.base.truss_spec / truss_config)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jinja2
import pytest
import yaml

from tests.deploy.helpers import (
    GATEWAY_ROUTES,
    IMAGE_UID,
    SERVICE_IMAGE,
    TRUSS_DIR,
    dockerfile_stages,
    project_version,
    truss_modules,
    truss_spec,
)

# Truss' generated supervisord.conf sets no stopwaitsecs: supervisord's default applies.
SUPERVISORD_STOPWAITSECS = 10
# Baseten's reverse proxy owns this port inside the container.
TRUSS_PROXY_PORT = 8080


def env() -> dict[str, str]:
    return dict(truss_spec().config.environment_variables)


def test_truss_loads_the_directory_and_passes_the_push_time_check() -> None:
    spec = truss_spec()
    spec.config.validate_forbid_extra()  # what `truss push` runs: no key unknown to this truss
    assert spec.config_path == TRUSS_DIR / "config.yaml"
    # A docker_server truss has no model class: nothing else in the directory is needed.
    assert spec.config.docker_server is not None and not spec.model_class_filepath.exists()


def test_the_loader_rejects_a_bad_config(tmp_path: Path) -> None:
    raw = yaml.safe_load((TRUSS_DIR / "config.yaml").read_text())
    raw["resources"]["accelerator"] = "B201:4"
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ValueError, match="Unsupported accelerator"):
        truss_modules().spec.TrussSpec(tmp_path)


def test_accelerator_and_concurrency_are_the_seeds() -> None:
    config = truss_spec().config
    assert config.resources.accelerator.count == 4
    assert config.resources.accelerator.accelerator.value == "B200"
    assert config.resources.use_gpu
    assert config.runtime.predict_concurrency == 256
    # The proxy admits 256 at once; the service must not reject what the proxy admitted.
    assert int(env()["GPTOSS_MAX_CONCURRENT_REQUESTS"]) >= config.runtime.predict_concurrency


def test_seed_environment_and_offline_operation() -> None:
    variables = env()
    assert variables["VLLM_USE_FLASHINFER_MOE_MXFP4_MXFP8"] == "1"
    assert variables["GPTOSS_PROFILE"] == "gpt-oss-120b-tp4"
    assert variables["HF_HUB_OFFLINE"] == "1"
    # Weights come from the mounted volume, not the hub.
    (source,) = truss_spec().config.weights.sources
    assert source.source.startswith("hf://openai/gpt-oss-120b")
    assert variables["GPTOSS_MODEL"] == source.mount_location
    assert "original/*" in (source.ignore_patterns or []), (
        "the original/ checkpoint would double the download"
    )
    # The seed shipped tiktoken files for Harmony; oss-harmony embeds its vocabulary instead.
    assert not any(name.startswith("TIKTOKEN") for name in variables)


def test_docker_server_is_the_gateway_started_by_gptoss_stack() -> None:
    config = truss_spec().config
    server = config.docker_server
    variables = env()
    assert server.predict_endpoint == GATEWAY_ROUTES["predict"]
    assert server.readiness_endpoint == GATEWAY_ROUTES["readiness"]
    assert server.liveness_endpoint == GATEWAY_ROUTES["liveness"]
    assert server.server_port == int(variables["GPTOSS_GATEWAY_PORT"]) != TRUSS_PROXY_PORT
    assert variables["GPTOSS_GATEWAY_BACKENDS"] == f"127.0.0.1:{variables['GPTOSS_PORT']}"
    assert config.runtime.transport.kind == "http"
    # The start command is the launcher the service image installs.
    copies = [rest for keyword, rest in dockerfile_stages()["service"] if keyword == "COPY"]
    assert any(rest.endswith(f"deploy/docker/gptoss-stack {server.start_command}") for rest in copies)


def test_image_and_user_match_the_dockerfile() -> None:
    config = truss_spec().config
    assert config.base_image.image == f"{SERVICE_IMAGE}:{project_version()}"
    assert config.docker_server.run_as_user_id == IMAGE_UID
    assert ("USER", f"{IMAGE_UID}:{IMAGE_UID}") in dockerfile_stages()["service"]
    assert config.canonical_python_version == "3.12", "vllm/vllm-openai images ship Python 3.12"


def test_drain_fits_inside_supervisord_stop_window() -> None:
    """supervisord SIGKILLs 10 s after SIGTERM: the service drains, then the gateway stops, in time."""
    assert float(env()["GPTOSS_DRAIN_GRACE_SECONDS"]) + 1 <= SUPERVISORD_STOPWAITSECS
    health = truss_spec().config.runtime.health_checks
    assert health.startup_threshold_seconds >= 600, "engine start is 155-230 s on 4x H100"


def test_baseten_proxy_routes_land_on_the_gateway() -> None:
    """Render truss' own docker_server proxy template the way its image builder does."""
    config = truss_spec().config
    root = truss_modules().root
    template = jinja2.Environment(
        loader=jinja2.FileSystemLoader(root / "templates" / "docker_server"), undefined=jinja2.StrictUndefined
    ).get_template("proxy.conf.jinja")
    server = config.docker_server
    proxy = template.render(
        server_endpoint=server.predict_endpoint,
        readiness_endpoint=server.readiness_endpoint,
        liveness_endpoint=server.liveness_endpoint,
        server_port=server.server_port,
        client_max_body_size="100M",
        transport_kind=config.runtime.transport.kind,
    )
    assert f"listen {TRUSS_PROXY_PORT};" in proxy
    for route, endpoint in [
        ("^/v1/models/model:predict$", GATEWAY_ROUTES["predict"]),
        ("^/v1/models/model$", GATEWAY_ROUTES["readiness"]),
        ("^/$", GATEWAY_ROUTES["liveness"]),
    ]:
        assert f"rewrite {route} {endpoint} break;" in proxy
    assert proxy.count(f"proxy_pass http://127.0.0.1:{server.server_port};") >= 4
    assert "grpc_pass" not in proxy


def test_harmony_loads_with_no_network(tmp_path: Path) -> None:
    """Offline Harmony: the encoding loads with no network at all and an empty HOME / cache."""
    code = (
        "from openai_harmony import load_harmony_encoding, HarmonyEncodingName\n"
        "enc = load_harmony_encoding(HarmonyEncodingName.HARMONY_GPT_OSS)\n"
        "print(len(enc.stop_tokens_for_assistant_actions()))\n"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TIKTOKEN", "HF_"))}
    clean.update({"HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache")})
    # A private network namespace (root, as in CI) has no route anywhere; else a dead proxy.
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-n", "true"], capture_output=True, check=False).returncode == 0:
        cmd = [unshare, "-n", sys.executable, "-c", code]
    else:
        clean.update(
            {"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9", "NO_PROXY": ""}
        )
        cmd = [sys.executable, "-c", code]
    result = subprocess.run(cmd, env=clean, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert int(json.loads(result.stdout)) > 0
    assert not any(tmp_path.rglob("*")), "nothing may be downloaded into HOME"
