"""The default profile follows the GPUs present (count and memory), probed without torch."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from service import config, gpus
from service.config import PROFILES, Settings
from service.engine import engine_kwargs
from service.gpus import GIB, Gpu, probe_gpus, profile_for

MIB = 1 << 20
H100, H200, B200, L4, T4 = 81_559 * MIB, 143_771 * MIB, 183_359 * MIB, 23_034 * MIB, 15_360 * MIB


def fleet(count: int, memory: int | None) -> list[Gpu]:
    return [Gpu(index, memory) for index in range(count)]


@pytest.mark.parametrize(
    ("count", "memory", "expected"),
    [
        (0, None, "cpu-tiny"),
        (1, H100, "gpt-oss-120b"),
        (1, H200, "gpt-oss-120b"),
        (1, B200, "gpt-oss-120b"),
        (2, H100, "gpt-oss-120b"),  # TP=4 needs 4: one GPU of the two serves 120b
        (4, H100, "gpt-oss-120b-tp4"),
        (8, B200, "gpt-oss-120b-tp4"),
        (1, L4, "gpt-oss-20b"),
        (4, L4, "gpt-oss-120b-tp4"),  # 16.35 GiB of weights per GPU at TP=4
        (4, T4, "cpu-tiny"),
        (1, T4, "cpu-tiny"),
        (1, None, "gpt-oss-20b"),  # driver present, nvidia-smi missing: memory unknown
        (4, None, "gpt-oss-120b-tp4"),
    ],
)
def test_profile_for_the_gpus_present(count: int, memory: int | None, expected: str) -> None:
    choice = profile_for(fleet(count, memory))
    assert choice.profile == expected and choice.profile in PROFILES
    assert choice.reason.startswith("no GPU" if count == 0 else f"{count} GPU")


def test_the_one_gpu_profile_is_120b_at_tp1_with_the_seed_serving_flags() -> None:
    one, four = Settings(profile="gpt-oss-120b"), Settings(profile="gpt-oss-120b-tp4")
    assert engine_kwargs(one)["tensor_parallel_size"] == 1 and one.model == "openai/gpt-oss-120b"
    same = ("max_model_len", "max_num_seqs", "max_num_batched_tokens", "gpu_memory_utilization")
    assert all(getattr(one, name) == getattr(four, name) for name in same)
    assert one.kv_cache_dtype == "fp8" and one.async_scheduling and one.render_workers == 4


def fake_nvidia_smi(tmp_path: Path, output: str, exit_code: int = 0) -> None:
    script = tmp_path / "nvidia-smi"
    script.write_text(f"#!/bin/sh\ncat <<'OUT'\n{output}\nOUT\nexit {exit_code}\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


@pytest.fixture
def fake_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(gpus, "PROC_GPUS", tmp_path / "no-driver")
    return tmp_path


def test_probe_reads_nvidia_smi_memory(fake_path: Path) -> None:
    fake_nvidia_smi(fake_path, "0, 143771\n1, 143771")
    assert probe_gpus() == [Gpu(0, 143_771 * MIB), Gpu(1, 143_771 * MIB)]


def test_cuda_visible_devices_narrows_the_probe(fake_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_nvidia_smi(fake_path, "\n".join(f"{i}, 81559" for i in range(8)))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    assert probe_gpus() == [Gpu(3, H100)]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert probe_gpus() == []


def test_without_nvidia_smi_the_driver_entries_are_counted(fake_path: Path) -> None:
    fake_nvidia_smi(fake_path, "NVIDIA-SMI has failed", exit_code=9)
    driver = fake_path / "no-driver"
    for bus in ("0000:18:00.0", "0000:2a:00.0", "0000:3a:00.0", "0000:5d:00.0"):
        (driver / bus).mkdir(parents=True)
    assert probe_gpus() == fleet(4, None)
    assert profile_for(probe_gpus()).profile == "gpt-oss-120b-tp4"


def test_settings_default_to_the_detected_profile(fake_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_nvidia_smi(fake_path, "0, 143771")
    monkeypatch.setattr(config, "_detected", None)
    monkeypatch.delenv("GPTOSS_PROFILE", raising=False)
    try:
        settings = Settings()
        assert settings.profile == "gpt-oss-120b" and settings.tensor_parallel_size == 1
        assert config.detected_profile().reason == f"1 GPU, {143_771 * MIB / GIB:.0f} GiB each"
        assert Settings(profile="cpu-tiny").profile == "cpu-tiny"  # explicit wins
    finally:
        config._detected = None  # the next test probes this machine again
