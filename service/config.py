"""One typed settings object for the service: CLI flags, `GPTOSS_*` env, an optional file, profiles.

Precedence, highest first: CLI flags, environment, settings file (`GPTOSS_CONFIG_FILE`, JSON or
YAML), the named profile's values, field defaults. Profiles are data (`PROFILES`), not code paths.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from gptoss import limits
from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from service.gpus import ProfileChoice, probe_gpus, profile_for
from service.profiles import HARMONY_TINY_DIR, PROFILES, REPO_ROOT, TINY_MODEL_DIR, ProfileName

__all__ = ["HARMONY_TINY_DIR", "PROFILES", "REPO_ROOT", "TINY_MODEL_DIR", "ProfileName", "Settings"]


_detected: ProfileChoice | None = None


def detected_profile() -> ProfileChoice:
    """The profile the GPUs present call for (service/gpus.py), probed once per process."""
    global _detected
    if _detected is None:
        _detected = profile_for(probe_gpus())
    return _detected


def default_profile() -> str:
    return detected_profile().profile


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
        hide_input_in_errors=True,  # an error must never print API keys
    )

    profile: ProfileName = Field(
        default_factory=default_profile,  # type: ignore[arg-type]
        description="named set of engine and serving values; picked from the GPUs present when unset",
    )
    # Network
    host: str = Field("127.0.0.1", description="gRPC listen address (0.0.0.0 in containers)")
    port: int = Field(50051, ge=0, le=65535, description="gRPC port; 0 = any free port")
    metrics_port: int | None = Field(
        9400, ge=0, le=65535, description="Prometheus HTTP port; 0 = any free port, null = off"
    )
    metrics_host: str = Field("127.0.0.1", description="metrics bind address; loopback unless set")
    # Model and engine
    model: str = Field(str(TINY_MODEL_DIR), description="weights: a local directory or a Hugging Face hub id")
    served_model_name: str = Field("", description="model id clients see and send; empty = model's name")
    load_format: str = Field("auto", description="vLLM load format; dummy = random weights (no download)")
    dtype: str = Field("auto", description="vLLM dtype of weights and activations")
    tensor_parallel_size: int = Field(1, ge=1, description="GPUs one engine spans (tensor parallel)")
    max_model_len: int = Field(8192, ge=16, description="context length: prompt + output tokens")
    max_num_seqs: int = Field(256, ge=1, description="sequences the engine batches at once")
    max_num_batched_tokens: int | None = Field(
        None, ge=16, description="tokens per engine step (prefill chunking); null = vLLM's choice"
    )
    gpu_memory_utilization: float = Field(
        0.9, gt=0, le=1, description="share of each GPU's memory vLLM may use (weights + KV cache)"
    )
    kv_cache_dtype: str = Field("auto", description="KV cache dtype; fp8 halves it against bf16")
    kv_cache_memory_bytes: int | None = Field(
        None, ge=1, description="KV cache size in bytes (overrides gpu_memory_utilization; CPU engine)"
    )
    async_scheduling: bool = Field(False, description="vLLM schedules the next step while one runs")
    enable_prefix_caching: bool = Field(True, description="reuse KV cache of shared prompt prefixes")
    stream_interval: int = Field(1, ge=1, description="engine steps coalesced per streamed delta")
    stream_ramp_tokens: int = Field(
        0,
        ge=0,
        description="a request's first N output tokens stream per step despite stream_interval, so a "
        "Harmony reply's first visible delta is not held back (service/vllm_stream_ramp.py)",
    )
    seed: int = Field(0, description="engine random seed (requests may set their own)")
    tokenizer: str = Field(
        "", description="tokenizer dir or hub id; empty = the model's, else offline o200k_harmony"
    )
    tokenizer_cache_dir: str = Field(
        "~/.cache/gptoss/tokenizers", description="where the offline o200k_harmony tokenizer is written"
    )
    engine_env: dict[str, str] = Field(
        default_factory=dict, description="environment set for the engine before it starts (JSON object)"
    )
    grammar_parallel_fill_above: int | None = Field(
        32,
        ge=0,
        description="constrained requests in a step above which (up to vLLM's 128) their grammar bitmasks are "
        "filled in one xgrammar call on native threads (service/vllm_grammar_fill.py); null: vLLM's",
    )
    logits_processors: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="vLLM logits processors (module:Class) loaded into the engine"
    )
    warmup: bool = Field(True, description="run the batch-range warm-up before readiness turns SERVING")
    # Serving limits
    max_concurrent_requests: int = Field(
        256, ge=1, description="streams admitted at once; more wait in the queue or get RESOURCE_EXHAUSTED"
    )
    admission_queue_size: int = Field(
        0, ge=0, description="requests that may wait for a free slot beyond the limit; 0 = reject at once"
    )
    admission_queue_timeout_seconds: float = Field(
        5.0, gt=0, description="longest wait for a slot before RESOURCE_EXHAUSTED"
    )
    caller_max_share: float = Field(
        1.0, gt=0, le=1, description="fraction of max_concurrent_requests one caller may hold"
    )
    default_max_tokens: int | None = Field(
        None, ge=1, description="output budget of requests that set none; null = rest of the context"
    )
    ignore_eos_callers: Annotated[list[str] | None, NoDecode] = Field(
        None, description="callers allowed ignore_eos ('*' = all); null = all on cpu-* profiles, else none"
    )
    max_messages: int = Field(limits.MAX_MESSAGES, ge=1, description="messages per request")
    max_tools: int = Field(limits.MAX_TOOLS, ge=0, description="tools per request")
    max_tools_bytes: int = Field(limits.MAX_TOOLS_BYTES, ge=1024, description="serialized tools per request")
    max_request_bytes: int = Field(
        limits.MAX_REQUEST_BYTES, ge=1024, description="largest gRPC request message"
    )
    drain_grace_seconds: float = Field(
        30.0, ge=0, description="how long in-flight streams may finish after SIGTERM"
    )
    drain_announce_seconds: float = Field(
        1.0,
        ge=0,
        description="after SIGTERM the port stays open at least this long (within the grace), so "
        "health-watching clients stop routing here before it closes",
    )
    max_connection_age_seconds: float = Field(
        300.0, gt=0, description="clients reconnect after this, so balancers see new replicas"
    )
    # Security: API keys (gRPC metadata `authorization: Bearer KEY`), TLS / mutual TLS
    api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="comma-separated API keys; empty = no auth (health stays open)"
    )
    api_key_file: Path | None = Field(None, description="one key per line; `#` comments and blanks skipped")
    # Keys of gateways: they authenticate like api_keys, and only they may name the caller.
    trusted_gateway_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="keys of gateways: they authenticate and may name the caller"
    )
    auth_disabled: bool = Field(False, description="start without keys even if a key setting is blank")
    tls_cert: str | None = Field(None, description="PEM certificate chain; set with tls_key to serve TLS")
    tls_key: str | None = Field(None, description="PEM private key of tls_cert")
    tls_client_ca: str | None = Field(None, description="CA bundle; set it to require client certs")
    # Harmony
    default_reasoning_effort: Literal["low", "medium", "high"] = Field(
        "medium", description="reasoning effort of requests that do not set one"
    )
    structured_reasoning_budget: int = Field(
        1024,
        ge=0,
        description="analysis tokens before a structured answer is forced (max_reasoning_tokens unset)",
    )
    render_workers: int = Field(
        0, ge=0, description="processes that render long chat prompts off the event loop; 0 = render inline"
    )
    include_conversation_date: bool = Field(
        True, description="put today's date in the Harmony system message"
    )
    # Observability
    otel_exporter: Literal["none", "console", "otlp"] = Field(
        "none", description="OpenTelemetry span exporter (otlp reads OTEL_EXPORTER_OTLP_*)"
    )
    # Logging
    log_level: str = Field("INFO", description="level of the JSON logs on stderr (vLLM's included)")
    log_prompts: bool = Field(False, description="log prompt and output text (off: only sizes and ids)")

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

    @field_validator(
        "api_keys", "trusted_gateway_keys", "ignore_eos_callers", "logits_processors", mode="before"
    )
    @classmethod
    def _split_list(cls, value: Any) -> Any:
        """Accept `a,b` or a JSON list from the environment, as well as a list."""
        if isinstance(value, str) and value.lstrip().startswith("["):
            return json.loads(value)
        if isinstance(value, str):
            return [key.strip() for key in value.split(",") if key.strip()]
        return value

    @model_validator(mode="before")
    @classmethod
    def _refuse_blank_keys(cls, data: Any) -> Any:
        """A key setting that is given but holds no key must not silently turn auth off."""
        if isinstance(data, dict) and not data.get("auth_disabled"):
            blank = [name for name in ("api_keys", "trusted_gateway_keys") if _blank(data.get(name))]
            key_file = data.get("api_key_file")
            if key_file and not _file_keys(Path(key_file)):
                blank.append("api_key_file")
            if blank:
                raise ValueError(
                    f"{', '.join(blank)} given but holds no key: set keys, or auth_disabled to run without"
                )
        return data

    def all_api_keys(self) -> list[str]:
        """api_keys, the keys of api_key_file, then trusted_gateway_keys."""
        from_file = _file_keys(self.api_key_file) if self.api_key_file else []
        return [*self.api_keys, *from_file, *self.trusted_gateway_keys]

    @property
    def model_id(self) -> str:
        """The id clients see (OpenAI `model`)."""
        return self.served_model_name or Path(self.model).name or self.model

    def public_summary(self) -> dict[str, Any]:
        """Settings safe to log: API keys are counted, never printed."""
        summary = self.model_dump(mode="json", exclude={"api_keys", "trusted_gateway_keys"})
        summary["api_keys"] = len(self.api_keys)
        summary["trusted_gateway_keys"] = len(self.trusted_gateway_keys)
        return summary


def _blank(value: Any) -> bool:
    """Given (not None) yet without a single non-blank key."""
    if value is None:
        return False
    items = value.split(",") if isinstance(value, str) else list(value)
    return not any(str(item).strip() for item in items)


def _file_keys(path: Path) -> list[str]:
    lines = (line.strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def load_settings(argv: list[str] | None = None, **overrides: Any) -> Settings:
    """Build settings from CLI args (when argv is given), env, file and profile."""
    if argv is None:
        return Settings(**overrides)
    return Settings(_cli_parse_args=argv, _cli_prog_name="gptoss-service", **overrides)
