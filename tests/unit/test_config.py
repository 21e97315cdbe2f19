"""Settings: profiles are data, and flags > env > file > profile > defaults."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.config import HARMONY_TINY_DIR, PROFILES, TINY_MODEL_DIR, Settings, load_settings
from service.engine import engine_kwargs
from service.engine_tokenizer import grammar_tokenizer, tokenizer_dir


def test_cpu_tiny_profile_serves_the_trained_model() -> None:
    settings = Settings(profile="cpu-tiny")
    kwargs = engine_kwargs(settings)
    assert kwargs["model"] == str(HARMONY_TINY_DIR)
    assert kwargs["load_format"] == "auto" and kwargs["dtype"] == "float32"
    # xgrammar needs the vocabulary: the grammar copy of the trained model's own tokenizer.json.
    assert kwargs["skip_tokenizer_init"] is False
    assert tokenizer_dir(settings) == str(
        grammar_tokenizer(HARMONY_TINY_DIR, settings.tokenizer_cache_dir, HARMONY_TINY_DIR / "config.json")
    )
    assert settings.model_id == "gpt-oss-tiny"
    assert settings.include_conversation_date is False  # it was trained without a date line


def test_cpu_tiny_random_profile(tmp_path: Path) -> None:
    settings = Settings(profile="cpu-tiny-random", tokenizer_cache_dir=str(tmp_path))
    kwargs = engine_kwargs(settings)
    # A dummy-weight config dir has no tokenizer: the offline one is generated into the cache,
    # and the engine loads its grammar copy.
    engine_tokenizer = tokenizer_dir(settings)
    assert (tmp_path / "o200k_harmony" / "tokenizer.json").exists()
    assert engine_tokenizer == str(
        grammar_tokenizer(tmp_path / "o200k_harmony", str(tmp_path), TINY_MODEL_DIR / "config.json")
    )
    assert tokenizer_dir(settings) == engine_tokenizer  # the second start reuses it
    assert kwargs["model"] == str(TINY_MODEL_DIR) and (TINY_MODEL_DIR / "config.json").exists()
    assert kwargs["load_format"] == "dummy" and kwargs["dtype"] == "float32"
    assert settings.model_id == "gpt-oss-tiny" and settings.include_conversation_date is True
    assert settings.max_model_len == Settings(profile="cpu-tiny").max_model_len == 4096


def test_seed_production_profile() -> None:
    settings = Settings(profile="gpt-oss-120b-tp4")
    kwargs = engine_kwargs(settings)
    assert kwargs["tensor_parallel_size"] == 4
    assert kwargs["max_model_len"] == 8192 and kwargs["max_num_seqs"] == 256
    assert kwargs["max_num_batched_tokens"] == 8192 and kwargs["gpu_memory_utilization"] == 0.95
    assert kwargs["kv_cache_dtype"] == "fp8" and kwargs["async_scheduling"] is True
    assert kwargs["load_format"] == "auto"  # real weights unless a profile or flag says dummy
    assert settings.max_concurrent_requests == 256
    assert settings.engine_env["VLLM_USE_FLASHINFER_MOE_MXFP4_MXFP8"] == "1"


def test_precedence_flag_over_env_over_file_over_profile(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "settings.json"
    config.write_text(json.dumps({"max_num_seqs": 7, "max_model_len": 1024, "port": 1}))
    monkeypatch.setenv("GPTOSS_CONFIG_FILE", str(config))
    monkeypatch.setenv("GPTOSS_MAX_MODEL_LEN", "2048")
    monkeypatch.setenv("GPTOSS_PORT", "2")
    settings = load_settings(["--profile", "gpt-oss-120b-tp4", "--port", "3", "--load-format", "dummy"])
    assert settings.max_num_seqs == 7  # file beats profile (256)
    assert settings.max_model_len == 2048  # env beats file
    assert settings.port == 3  # flag beats env
    assert settings.load_format == "dummy" and settings.tensor_parallel_size == 4


def test_api_keys_from_env_are_comma_separated_and_never_logged(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPTOSS_API_KEYS", "k1, k2")
    settings = Settings()
    assert settings.api_keys == ["k1", "k2"]
    assert "k1" not in json.dumps(settings.public_summary())


def test_unknown_profile_and_setting_are_rejected() -> None:
    with pytest.raises(ValueError):
        Settings(profile="nope")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Settings(max_model_lenn=5)  # type: ignore[call-arg]


def test_every_profile_builds(tmp_path: Path) -> None:
    for name in PROFILES:
        settings = Settings(profile=name, tokenizer_cache_dir=str(tmp_path))  # type: ignore[arg-type]
        assert engine_kwargs(settings)["skip_tokenizer_init"] is False
