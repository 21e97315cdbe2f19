"""One typed settings object for the service: CLI flags, `GPTOSS_*` env, an optional file, profiles.

Precedence, highest first: CLI flags, environment, settings file (`GPTOSS_CONFIG_FILE`, JSON or
YAML), the named profile's values, field defaults. Profiles are data (`PROFILES`), not code paths.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent
TINY_MODEL_DIR = REPO_ROOT / "models" / "tiny-gpt-oss"
# Built by `make model` (models/harmony-tiny/build.py): the tiny architecture with trained weights.
HARMONY_TINY_DIR = REPO_ROOT / "models" / "harmony-tiny" / "build"

ProfileName = Literal["cpu-tiny", "cpu-tiny-random", "gpt-oss-20b", "gpt-oss-120b-tp4"]

# The seed deployment's engine and serving flags, shared by the GPU profiles.
_SEED_SERVING: dict[str, Any] = {
    "max_model_len": 8192,
    "max_num_seqs": 256,
    "max_num_batched_tokens": 8192,
    "gpu_memory_utilization": 0.95,
    "kv_cache_dtype": "fp8",
    "async_scheduling": True,
    # Like the seed's `vllm serve --stream-interval 20`: first token at once, then 20-token deltas.
    "stream_interval": 20,
    "max_concurrent_requests": 256,
    # Harmony rendering of long prompts off the gRPC event loop (service/prompt_renderer.py).
    "render_workers": 4,
}

# The CPU engine's values, shared by both tiny profiles.
_CPU_TINY_SERVING: dict[str, Any] = {
    "served_model_name": "gpt-oss-tiny",
    "dtype": "float32",
    "max_model_len": 4096,
    "max_num_seqs": 64,
    "max_num_batched_tokens": 4096,
    "kv_cache_memory_bytes": 1 << 30,
    "max_concurrent_requests": 64,
    "engine_env": {"VLLM_CPU_KVCACHE_SPACE": "1"},
}

# Engine and serving values per profile; anything set explicitly (flag, env, file) wins.
PROFILES: dict[str, dict[str, Any]] = {
    # Trained weights that speak Harmony (models/harmony-tiny/README.md: its fixed behaviour). It
    # was trained on prompts without a date line, so this profile renders none by default.
    "cpu-tiny": {
        "model": str(HARMONY_TINY_DIR),
        "load_format": "auto",
        "include_conversation_date": False,
        **_CPU_TINY_SERVING,
    },
    # Random weights (never closes a Harmony header): for fuzzing and raw-token benchmarks.
    "cpu-tiny-random": {
        "model": str(TINY_MODEL_DIR),
        "load_format": "dummy",
        **_CPU_TINY_SERVING,
    },
    "gpt-oss-20b": {
        "model": "openai/gpt-oss-20b",
        "served_model_name": "gpt-oss-20b",
        **_SEED_SERVING,
    },
    "gpt-oss-120b-tp4": {
        "model": "openai/gpt-oss-120b",
        "served_model_name": "gpt-oss-120b",
        "tensor_parallel_size": 4,
        **_SEED_SERVING,
        # Only read by vLLM on Blackwell (B200): the MXFP4 x MXFP8 FlashInfer MoE kernels.
        "engine_env": {"VLLM_USE_FLASHINFER_MOE_MXFP4_MXFP8": "1"},
    },
}


def _gpu_present() -> bool:
    """Cheap GPU probe that avoids importing torch at config time."""
    return Path("/dev/nvidia0").exists() or Path("/dev/nvidiactl").exists()


def default_profile() -> str:
    return "gpt-oss-120b-tp4" if _gpu_present() else "cpu-tiny"


def _read_settings_file(path: str) -> dict[str, Any]:
    text = Path(path).read_text()
    if path.endswith((".yaml", ".yml")):
        import yaml  # a vLLM dependency; only needed for YAML files

        loaded = yaml.safe_load(text) or {}
    else:
        loaded = json.loads(text)
    if not isinstance(loaded, dict):
        raise ValueError(f"settings file {path} must hold a mapping")
    return loaded


class Settings(BaseSettings):
    """Everything the service reads at start. Field names are the env names without `GPTOSS_`."""

    model_config = SettingsConfigDict(
        env_prefix="GPTOSS_",
        extra="forbid",
        validate_default=True,
        cli_kebab_case=True,
        cli_implicit_flags=True,
    )

    profile: ProfileName = Field(default_factory=default_profile)  # type: ignore[arg-type]
    # Network
    host: str = "127.0.0.1"
    port: int = Field(50051, ge=0, le=65535)
    metrics_port: int | None = Field(
        9400, ge=0, le=65535, description="Prometheus HTTP port; 0 = any free port, None = off"
    )
    # Model and engine
    model: str = str(TINY_MODEL_DIR)
    served_model_name: str = ""
    load_format: str = "auto"
    dtype: str = "auto"
    tensor_parallel_size: int = Field(1, ge=1)
    max_model_len: int = Field(8192, ge=16)
    max_num_seqs: int = Field(256, ge=1)
    max_num_batched_tokens: int | None = Field(None, ge=16)
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1)
    kv_cache_dtype: str = "auto"
    kv_cache_memory_bytes: int | None = Field(None, ge=1)
    async_scheduling: bool = False
    enable_prefix_caching: bool = True
    stream_interval: int = Field(1, ge=1, description="engine steps coalesced per streamed delta")
    seed: int = 0
    engine_env: dict[str, str] = Field(default_factory=dict)
    # Serving limits
    max_concurrent_requests: int = Field(256, ge=1)
    admission_queue_size: int = Field(
        0, ge=0, description="requests that may wait for a free slot beyond the limit; 0 = reject at once"
    )
    admission_queue_timeout_seconds: float = Field(
        5.0, gt=0, description="longest wait for a slot before RESOURCE_EXHAUSTED"
    )
    max_messages: int = Field(1024, ge=1)
    max_tools: int = Field(128, ge=0)
    max_request_bytes: int = Field(4 << 20, ge=1024)
    drain_grace_seconds: float = Field(30.0, ge=0)
    max_connection_age_seconds: float = Field(300.0, gt=0, description="so balancers see new replicas")
    # Security: API keys (gRPC metadata `authorization: Bearer KEY`), TLS / mutual TLS
    api_keys: Annotated[list[str], NoDecode] = Field(default_factory=list)
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_client_ca: str | None = Field(None, description="CA bundle; set it to require client certs")
    # Harmony
    default_reasoning_effort: Literal["low", "medium", "high"] = "medium"
    render_workers: int = Field(
        0, ge=0, description="processes that render long chat prompts off the event loop; 0 = render inline"
    )
    include_conversation_date: bool = True
    # Observability
    otel_exporter: Literal["none", "console", "otlp"] = "none"
    # Logging
    log_level: str = "INFO"
    log_prompts: bool = False

    @model_validator(mode="before")
    @classmethod
    def _apply_file_and_profile(cls, data: Any) -> Any:
        """Fill unset fields from the settings file, then from the chosen profile."""
        if not isinstance(data, dict):
            return data
        merged = dict(data)
        config_file = os.environ.get("GPTOSS_CONFIG_FILE")
        if config_file:
            for key, value in _read_settings_file(config_file).items():
                merged.setdefault(key, value)
        profile = str(merged.get("profile") or default_profile())
        if profile in PROFILES:
            for key, value in PROFILES[profile].items():
                merged.setdefault(key, value)
        merged["profile"] = profile
        return merged

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: Any) -> Any:
        """Accept `a,b` from the environment as well as a list."""
        if isinstance(value, str):
            return [key.strip() for key in value.split(",") if key.strip()]
        return value

    @property
    def model_id(self) -> str:
        """The id clients see (OpenAI `model`)."""
        return self.served_model_name or Path(self.model).name or self.model

    def public_summary(self) -> dict[str, Any]:
        """Settings safe to log: API keys are counted, never printed."""
        summary = self.model_dump(mode="json", exclude={"api_keys"})
        summary["api_keys"] = len(self.api_keys)
        return summary


def load_settings(argv: list[str] | None = None, **overrides: Any) -> Settings:
    """Build settings from CLI args (when argv is given), env, file and profile."""
    if argv is None:
        return Settings(**overrides)
    return Settings(_cli_parse_args=argv, _cli_prog_name="gptoss-service", **overrides)  # type: ignore[call-arg]
